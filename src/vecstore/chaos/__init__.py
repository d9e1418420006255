"""vecstore.chaos: fault injection against a real local cluster, and proof that nothing broke.

Laid out like etcd's tests/robustness: `failpoint/` injects faults, `traffic/` runs clients
and records their history, `model/` says what a correct cluster may return, `validate/`
checks the cluster against it. `runner` ties them into scenarios (`make chaos`). It is a
client of the cluster: it never reaches into a process's memory.
"""
