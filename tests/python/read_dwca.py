"""Reads a Darwin Core Archive back the way GBIF tooling does, with
python-dwca-reader, and prints what it found as JSON: the core rows and
their extension rows (term URI -> value), the core's row type, and the
archive's metadata and descriptor extracted to OUT_DIR for schema checks.

usage: read_dwca.py ARCHIVE OUT_DIR
"""
import json
import os
import sys
import zipfile

from dwca.read import DwCAReader

archive, out_dir = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(archive) as z:
    names = sorted(z.namelist())
    for name in ("meta.xml", "eml.xml"):
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(z.read(name))

with DwCAReader(archive) as dwca:
    rows = []
    for row in dwca:
        rows.append({
            "id": row.id,
            "data": row.data,
            "extensions": [{"rowtype": ext.rowtype, "data": ext.data} for ext in row.extensions],
        })
    print(json.dumps({
        "files": names,
        "coreRowType": dwca.descriptor.core.type,
        "extensionRowTypes": [ext.type for ext in dwca.descriptor.extensions],
        "metadataTitle": dwca.metadata.find("dataset/title").text if dwca.metadata is not None else None,
        "rows": rows,
    }))
