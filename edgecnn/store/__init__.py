"""What edgecnn writes and where: atomic files, hashes, the folder lock, staged sets, export
locations."""
