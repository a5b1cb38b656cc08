"""The command line is a thin wrapper of the API (``cae_fast.fitting``): on the same built-in data
and seed, ``cae-fast`` and ``FrameFilter`` must give bit-identical scores and the same labels, for a
fit and for ``--score-only`` (the oracle for each door is the other one; any divergence of the two
paths, e.g. a score computed differently because the command line asks for extra ones, fails)."""

from __future__ import annotations

import numpy as np
import pytest

from cae_fast.api import FrameFilter
from cae_fast.cli.main import main as cli_main

DATA = "builtin:drive:test:64"  # 64 frames of the synthetic drive, some corrupted (labelled)
FAST = dict(image_size=32, epochs=3, batch_size=8, m_ref=16, latent_dim=32, median_k=5, seed=3, device="cpu")
FAST_CLI = [
    "--image-size", "32", "--epochs", "3", "--batch-size", "8", "--m-ref", "16", "--latent-dim", "32",
    "--median-k", "5", "--seed", "3", "--device", "cpu", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    out = tmp_path_factory.mktemp("wrapper") / "run"
    assert cli_main(["--data", DATA, "--out", str(out), *FAST_CLI]) == 0
    with np.load(out / "filter_result.npz") as res:
        cli = {k: res[k] for k in res.files}
    return FrameFilter(**FAST).fit(DATA), cli, out


def test_fit_through_the_command_line_and_the_api_is_bit_identical(both):
    f, cli, _ = both
    assert len(f.decision_scores_) == 64 and 0 < f.labels_.sum() < 64  # a real decision, not a trivial one
    assert not f.trained_on_.all()  # three epochs: the trimming left frames out, so keep_ordinary has a say
    assert np.array_equal(f.decision_scores_, cli[f.config_.score].astype(np.float64))
    assert np.array_equal(f.labels_, (~cli["is_clean"]).astype(np.int64))
    assert f.threshold_ == float(cli["delta"])
    assert np.array_equal(f.trained_on_, cli["trained_on"])
    assert np.array_equal(f._decision.unusualness, cli["unusualness"])  # judged against trained_on_
    for name, values in f.scores_.items():
        assert np.array_equal(values, cli[name]), name


def test_score_only_is_the_api_scoring_the_saved_network(both, tmp_path):
    f, _, out = both
    again = tmp_path / "again"
    flags = ["--data", DATA, "--out", str(again), "--score-only", str(out / "checkpoint.pt"), *FAST_CLI]
    assert cli_main(flags) == 0
    loaded = FrameFilter.load(out / "checkpoint.pt")
    with np.load(again / "filter_result.npz") as res:
        assert np.array_equal(loaded.decision_function(DATA), res[f.config_.score].astype(np.float64))
        assert np.array_equal(loaded.predict(DATA), (~res["is_clean"]).astype(np.int64))
    # the network scores its own training frames as the fit did, apart from keep_ordinary's trained_on
    assert np.array_equal(loaded.decision_function(DATA), f.decision_scores_)
