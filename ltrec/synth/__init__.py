"""The demo shop generator and its ground truth (DESIGN §1, §2 "Demo data").

:mod:`ltrec.synth.demo` writes a synthetic shop into the store; :mod:`ltrec.synth.truth` holds the
preference model it draws responses from (read back by the simulator); :mod:`ltrec.synth.vocab`
the catalogue vocabularies. Nothing is re-exported here, so importing the package costs nothing.
"""
