"""`edgecnn bench`: latency per hardware target, side by side with Keras (and LiteRT/OpenVINO), on
this machine or a device; what the scripts under bench/ share."""
