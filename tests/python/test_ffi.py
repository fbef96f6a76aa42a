"""Drives fieldnotes-mobile-bridge through its UniFFI boundary, as a phone app
would: the module imported here is the Python binding generated from the
compiled library (`mobile-bridge/bindings.sh python`), not a reimplementation.

Run by `tests/tests/python_ffi.rs`, which starts a real server, creates an
invitation, generates the bindings and sets:

    FIELDNOTES_SERVER_URL   the server's base URL (http://127.0.0.1:PORT)
    FIELDNOTES_INVITATION   a single-use enrolment code
    FIELDNOTES_STORE_DIR    an empty directory for the device's store
    PYTHONPATH              the generated bindings (the library beside them)

The identifier of the synced sighting is printed as `synced sighting <id>`
for the Rust test to look up in the server's inventory. Standard library only.
"""

import os
import tempfile
import unittest

import fieldnotes_mobile_bridge as fieldnotes

SYNC_TIMEOUT_SECS = 30


def a_sighting(**overrides):
    """A common toad seen by the pond of the Friche Saint-Vincent."""
    fields = dict(
        scientific_name="Bufo bufo",
        latitude=45.7772,
        longitude=4.8550,
        accuracy_m=8.0,
        individual_count=2,
        notes="under the bridge, near the pond",
    )
    fields.update(overrides)
    return fieldnotes.SightingInput(**fields)


class FieldDeviceThroughFfi(unittest.TestCase):
    """One enrolled phone; each test opens it as an app does at start-up."""

    @classmethod
    def setUpClass(cls):
        cls.store_dir = os.environ["FIELDNOTES_STORE_DIR"]
        fieldnotes.FieldDevice.enrol(
            cls.store_dir,
            os.environ["FIELDNOTES_SERVER_URL"],
            os.environ["FIELDNOTES_INVITATION"],
            "Camille's phone (Python FFI test)",
            "Camille Martin",
        )

    def setUp(self):
        self.device = fieldnotes.FieldDevice.open(self.store_dir)

    def tearDown(self):
        # Closes the device now, as an app leaving the foreground would, rather
        # than whenever the interpreter gets to it.
        self.device = None

    def test_a_sighting_recorded_offline_is_pending_until_synced_to_the_server(self):
        status = self.device.status()
        self.assertEqual(status.pending_records, 0)
        self.assertFalse(status.connected)
        self.assertIsNone(status.last_sync)

        # No sync has run since enrolment: the record exists only on the phone,
        # and survives the app closing the device (a restart, a dead battery).
        sighting_id = self.device.record_sighting(a_sighting())
        self.assertEqual(self.device.status().pending_records, 1)
        self.device = None
        self.device = fieldnotes.FieldDevice.open(self.store_dir)
        self.assertEqual(self.device.status().pending_records, 1)
        self.assertEqual(
            [(item.kind, item.id) for item in self.device.pending()],
            [(fieldnotes.RecordKind.SIGHTING, sighting_id)],
        )

        synced = self.device.sync(SYNC_TIMEOUT_SECS)
        self.assertEqual(synced.pending_records, 0)
        self.assertIsNotNone(synced.last_sync)
        self.assertEqual(self.device.status().pending_records, 0)
        print(f"synced sighting {sighting_id}", flush=True)

    def test_an_impossible_latitude_is_refused_naming_decimal_latitude(self):
        before = self.device.status().pending_records
        with self.assertRaises(fieldnotes.FieldError.Invalid) as refused:
            self.device.record_sighting(a_sighting(latitude=123.0))
        fields = [problem.field for problem in refused.exception.problems]
        self.assertIn("decimalLatitude", fields)
        self.assertEqual(self.device.status().pending_records, before)

    def test_a_store_never_enrolled_does_not_open(self):
        with tempfile.TemporaryDirectory() as empty:
            with self.assertRaises(fieldnotes.FieldError.NotEnrolled):
                fieldnotes.FieldDevice.open(empty)


if __name__ == "__main__":
    unittest.main(verbosity=2)
