"""`python -m bench.perf`: performance figures, one `name: value` line each, saved as JSON with the machine.

machine.py   what the figures were measured on (CPU model, cores, torch threads, GPU)
device.py    which device each section runs on (--device), and the figures that name it
timing.py    timers that wait for the device's queued work before reading the clock
retrieval.py full-pool exact top-2K retrieval against a plain matmul of the same shape (GFLOP/s)
itemcf.py    the existing system's item-CF fit against the `implicit` library's item-item cosine
existing.py  the existing system's channels: Swing's fit next to item-CF's, one multi-channel retrieval
sasrec_recbole.py  our SASRec against RecBole's on ml-100k under RecBole's protocol and evaluator
scale.py     (--full) the Pure- and KuaiRand-1K-sized synthetic presets end to end: seconds, peak memory

Figures come from this command only, never from timed unit tests.
"""
