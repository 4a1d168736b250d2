"""The developer tools behind the CLI: accuracy measurement (and its documented bounds),
the benchmark suite, the kernel checks and the GPU performance model.  Nothing here runs on
the path of ``apply`` / ``grad``; ``python -m activations <command>`` is a thin layer over them."""
