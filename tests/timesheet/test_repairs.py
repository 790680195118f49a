from __future__ import annotations

from ocrlab.timesheet.repairs import Repair, Repairs


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


def test_a_record_says_how_its_entries_are_counted():
    """Entries count from 1 (as validation and people count); the local reader counted from 0 before
    records said so, and those records are read right."""
    repairs = Repairs()
    repairs.add("split_tokens", "entries[2].date", "05/29", "2025-05-29")
    repairs.add("label_spacing", "total_hours", "Totalhours", "Total hours")
    stored = repairs.attributes()
    assert stored["ParseRepairsBase"] == 1
    assert Repairs.from_record(stored) == repairs
    legacy = {"ParseRepairs": '[{"rule": "split_tokens", "field": "entries[1].date", "before": "05/29", '
                              '"after": "2025-05-29"}, {"rule": "row_split", "field": "entries[0]", '
                              '"before": "a", "after": "b"}, {"rule": "label_spacing", "field": "total_hours", '
                              '"before": "x", "after": "y"}]'}
    old_local = Repairs.from_record({**legacy, "Engine": "rapidocr"})
    assert [r.field for r in old_local] == ["entries[2].date", "entries[1]", "total_hours"]
    assert [r.field for r in Repairs.from_record({**legacy, "Engine": "bedrock"})][:2] == ["entries[1].date",
                                                                                          "entries[0]"]
