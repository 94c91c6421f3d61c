"""The pipeline: a file in, an archive out, and back. ``encoder`` picks the level (``levels``) and runs
``encode_fast`` or ``encode_lm`` over the plan of ``file_plan``, accounting in ``tally``; ``decoder``
runs it backwards; ``parallel`` puts LM chunks on processes or Ray actors; ``salvage`` keeps what a
damaged archive still holds.

May import: every coder (``lm``, ``cm``), ``container``, ``transforms``, ``tensors`` and the base modules.
"""
