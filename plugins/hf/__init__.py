"""The ``hf`` backend (local transformers checkpoints) and offline tiny test models (``make_tiny``)."""
