"""Training of the bundled super-resolution models (data packing, patch sampling, the loop)."""
