"""Where a cell of the validation matrix runs: here, under qemu-user, on an SSH device, on Ray.

Every place implements :class:`~edgecnn.runners.base.Runner`: it runs variant files on images and
says how the outputs were obtained (natively or emulated, where, and the CPU class seen there),
so a report labels each cell by what really happened rather than by what the caller asked for.
Nothing heavy is imported here: :mod:`edgecnn.runners.worker` runs in bare interpreters.
"""
