"""Pure computation: Paillier, PSI, secret sharing, masking, DP.

This package imports only the standard library, numpy, gmpy2 and crypto libraries.
It never imports zmq, pandas, ``vfl`` or ``parties`` (checked by tests/test_layering.py).
"""
