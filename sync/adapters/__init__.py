"""One adapter per external system. Each does I/O for its system and nothing else."""
