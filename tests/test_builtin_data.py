"""Built-in labelled sets: names and splits parse, the digits are split once and for all, the
training splits are normal only and the test splits about 10% corrupted."""

from __future__ import annotations

import numpy as np
import pytest

from cae_fast.data.builtin import BuiltinSpec, load_builtin, parse, with_split


def test_names_splits_and_counts_parse():
    assert parse("builtin:digits") == BuiltinSpec("digits", "test", None)
    assert parse("builtin:digits:train") == BuiltinSpec("digits", "train", None)
    assert parse("builtin:drive:val:50") == BuiltinSpec("drive", "val", 50)
    assert parse("builtin:digits:80", split="train") == BuiltinSpec("digits", "train", 80)
    assert with_split("builtin:digits:80", "train") == "builtin:digits:train:80"
    assert with_split("builtin:digits:test", "train") == "builtin:digits:test"  # an explicit split stays
    assert with_split("frames/", "train") == "frames/" and with_split(None, "val") is None
    for bad in ("builtin:mnist", "builtin:digits:dev", "builtin:digits:0"):
        with pytest.raises(ValueError):
            parse(bad)


def test_digits_splits_are_fixed_disjoint_and_labelled():
    train = load_builtin("builtin:digits:train", 16)
    test = load_builtin("builtin:digits:test", 16)
    assert train.images.shape == (1078, 16, 16, 3) and train.images.dtype == np.uint8
    assert train.labels.sum() == 0 and (train.kinds == -1).all()
    assert len(test.labels) == 360 and test.labels.sum() == 36  # 10% noise-corrupted
    assert ((test.kinds == 0) == (test.labels == 1)).all()
    few = load_builtin("builtin:digits:test:40", 16)  # the split's first 40 digits, 10% of them noisy
    assert few.labels.sum() == 4
    both_clean = (few.labels == 0) & (test.labels[:40] == 0)
    np.testing.assert_array_equal(few.images[both_clean], test.images[:40][both_clean])
    # grey RGB, and no training image reappears in the test split
    assert (test.images[..., 0] == test.images[..., 2]).all()
    train_rows = {im.tobytes() for im in train.images}
    assert not any(im.tobytes() in train_rows for im in test.images[test.labels == 0])


def test_drive_train_split_is_clean_and_test_split_mixed():
    train = load_builtin("builtin:drive:train:30", 16)
    test = load_builtin("builtin:drive:test:200", 16)
    assert train.images.shape == (30, 16, 16, 3) and train.labels.sum() == 0
    assert 0 < test.labels.sum() < 200 and len(set(test.kinds[test.kinds >= 0].tolist())) > 1


def test_drive_clean_is_a_clean_only_sequence_of_unseen_scenes():
    from dataclasses import replace

    from cae_fast.data.builtin import DRIVE_CLEAN_SEEDS
    from cae_fast.data.synth import KINDS, SynthSpec, generate

    clean = load_builtin("builtin:drive-clean:test:300", 16)
    assert clean.images.shape == (300, 16, 16, 3)
    assert clean.labels.sum() == 0 and (clean.kinds == -1).all()
    # The mixed sequence of the same seed (the default share corrupted, in runs): where it is
    # labelled clean its frames are these, where it is labelled dirty they differ.
    mixed = generate(replace(SynthSpec(n_frames=300, size=16, seed=DRIVE_CLEAN_SEEDS["test"]), kinds=KINDS))
    dirty = mixed.labels == 1
    assert 0 < dirty.sum() < 300
    np.testing.assert_array_equal(clean.images[~dirty], mixed.images[~dirty])
    assert (clean.images[dirty] != mixed.images[dirty]).any(axis=(1, 2, 3)).all()
    # Its scenes are none of builtin:drive's splits.
    for split in ("train", "test"):
        other = load_builtin(f"builtin:drive:{split}:300", 16)
        pairs = zip(clean.images[:20], other.images[:20], strict=True)
        assert not any(np.array_equal(a, b) for a, b in pairs)
