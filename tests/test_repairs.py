from __future__ import annotations

from ocrlab.repairs import Repair, Repairs


def test_repairs_round_trip_through_the_stored_form():
    repairs = Repairs()
    repairs.add("digit_confusion", "entries[1].time_in", "O8:3O", "08:30")
    repairs.add("time_12h", "entries[2].time_out", "4:30 PM", "16:30")
    repairs.add("digit_confusion", "employee_id", "E-1O472", "E-10472")
    back = Repairs.from_json(repairs.to_json())
    assert back == repairs
    assert back.rules() == ["digit_confusion", "time_12h"]
    assert str(back[0]) == "digit_confusion: entries[1].time_in 'O8:3O' -> '08:30'"


def test_unreadable_stored_repairs_read_as_none():
    for text in (None, "", "not json", '{"rule": "x"}', "[1, 2]"):
        assert Repairs.from_json(text) == []
    assert Repairs.from_json('[{"rule": "r"}]') == [Repair("r", "", "", "")]
