"""What the input is and how it is cut: the safetensors layout (``source``), how a value's bytes are
ordered and written as the LM's text (``serialize``), and the chunk and window plan (``plan``).

May import: the base modules (errors, events, atomic) only.
"""
