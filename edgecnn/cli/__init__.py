"""The ``edgecnn`` command line: thin commands over the library functions."""
