"""Reading a /metrics answer: one sample's value, summed over the label sets that match."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def value(text: str, sample: str, **labels: str) -> float:
    """The sum of `sample`'s values whose labels include `labels` (0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == sample and labels.items() <= found.labels.items():
                total += found.value
    return total


def label_values(text: str, sample: str, label: str) -> set[str]:
    return {
        found.labels[label]
        for family in text_string_to_metric_families(text)
        for found in family.samples
        if found.name == sample and label in found.labels
    }
