"""Pure model math: no I/O, no TensorFlow. Every function here can be checked against its paper."""
