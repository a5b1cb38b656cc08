"""The external benchmark (issue 29): real photographs and a simulator's frames, corrupted by
``imagecorruptions``, with the peers. ``python -m benchmarks.external``; see docs/external.md."""
