import pandas as pd
import pytest

from posebowl.buckets import size_bucket, summarize


@pytest.mark.parametrize(
    ("box", "bucket"),
    [
        ((10, 10, 40, 40), "small"),
        ((10, 10, 210, 210), "medium"),
        ((10, 10, 600, 600), "large"),
        ((0, 10, 40, 40), "truncated"),
        ((900, 900, 1280, 1000), "truncated"),
        ((10, 500, 40, 1024), "truncated"),
    ],
)
def test_size_bucket(box, bucket):
    assert size_bucket([box])[0] == bucket


def test_summarize_keeps_bucket_order():
    iou = pd.Series([0.9, 0.1, 0.5, 0.7], index=list("abcd"))
    groups = pd.Series(["truncated", "small", "small", "large"], index=list("abcd"))
    t = summarize(iou, groups)
    assert list(t.index) == ["small", "large", "truncated"]
    assert t.loc["small", "count"] == 2
    assert t.loc["small", "mean"] == pytest.approx(0.3)
    assert t.loc["small", "below_0.5"] == 1
