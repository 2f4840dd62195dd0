"""Tests of vae_core.data, one file per concept.

Everything runs offline on small data made here (tmp_path). No mocks of our own code; a few checks spy on the
standard library (a socket that refuses or never answers stands for an offline machine, a counter on
zipfile.ZipFile.open for "nothing was unpacked") to assert what a wall-clock limit used to stand for: a test
asserts behaviour, timings belong in bench/.
"""
