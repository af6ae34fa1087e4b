"""The ``vllm`` backend (GPU machines with the ``vllm`` extra); vllm itself is imported lazily."""
