"""Fakes of the outside systems the gateway talks to, shared by the tests and the benchmarks.
They imitate the real systems' documented and recorded behaviour, quirks included."""
