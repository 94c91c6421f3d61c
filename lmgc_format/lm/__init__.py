"""The LM level, the method of LM-GC: model sources (``models``), the float and the portable int8
engines (``engine``, ``intengine`` with ``intlinear``, ``intkernels``, ``intmatmul``, ``intmath``),
the alphabet of tokens that can occur (``alphabet``), the predictor that steps windows in lockstep
(``predictor``), the mixers and top-byte model (``mixing``, ``topbyte``, ``rowfit``, ``intmix``),
range coding (``coder``) and LM chunk coding (``lmchunk``, ``intchunk``).

May import: ``cm``, ``container``, ``transforms``, ``tensors`` and the base modules.
"""
