from ecom_lakehouse.memory import release_freed_memory


def test_releasing_freed_memory_keeps_live_buffers_intact():
    import pyarrow as pa

    kept = pa.array(range(100_000))
    garbage = pa.array(range(1_000_000))
    del garbage
    release_freed_memory()
    assert kept.sum().as_py() == sum(range(100_000))
