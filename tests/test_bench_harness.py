"""The benchmark harness's turn taking (bench.harness.in_turns)."""

from bench.harness import in_turns


def test_in_turns__alternates_the_order__and_gives_each_ones_median():
    calls: list[str] = []
    readings = {"a": iter([5.0, 1.0, 3.0, 9.0]), "b": iter([2.0, 8.0, 4.0, 6.0])}

    def measured(name: str):
        def measure() -> float:
            calls.append(name)
            return next(readings[name])

        return measure

    a, b = in_turns(measured("a"), measured("b"), turns=4)

    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert (a, b) == (4.0, 5.0)  # medians of 1, 3, 5, 9 and of 2, 4, 6, 8
