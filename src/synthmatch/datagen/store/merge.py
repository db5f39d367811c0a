"""Merging dataset files: `merge_datasets`, and the generation attributes a merge keeps."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from .reader import Dataset
from .schema import DatasetError, DatasetSchema, generation_info
from .writer import DatasetWriter

log = logging.getLogger("synthmatch.datagen.store")


def _merged_generation(readers: Sequence[Dataset]) -> dict | None:
    """Generation attrs for a merge: kept when the inputs are consecutive ranges of one generation.

    Raises:
        DatasetError: inputs of the same generation whose index ranges overlap (duplicate examples).
    """
    found = [generation_info(r.h5.attrs) for r in readers]
    infos = [i for i in found if i is not None]
    if len(infos) != len(found):
        return None
    if len({i["fingerprint"] for i in infos}) != 1:
        log.info(
            "merging datasets of different generation settings: the result has no generation fingerprint"
        )
        return None
    ranges = sorted((i["index_start"], i["index_stop"], str(r.path)) for i, r in zip(infos, readers))
    for (_, a1, pa), (b0, b1, pb) in zip(ranges, ranges[1:]):
        if b0 < a1:
            raise DatasetError(
                f"cannot merge {pb} and {pa}: both hold generator indices [{b0}, {min(a1, b1)}) of the same "
                "generation (duplicate examples); merge each shard once"
            )
    ordered = [(i["index_start"], i["index_stop"]) for i in infos]
    contiguous = all(a[1] == b[0] for a, b in zip(ordered, ordered[1:]))
    if not contiguous:
        log.info("the merged shards are not consecutive in order: the result has no generation index range")
        return None
    return {
        "generate_fingerprint": infos[0]["fingerprint"],
        "generate_config": json.dumps(infos[0]["config"], sort_keys=True),
        "index_start": ordered[0][0],
        "index_stop": ordered[-1][1],
    }


def merge_datasets(
    output: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    chunk: int = 512,
    attrs: dict | None = None,
) -> Path:
    """Concatenate datasets with identical schemas into `output` (written atomically).

    Rows are copied in bulk and compressed audio chunks are copied as they are (no decode/encode), so
    assembling a large dataset costs about a file copy. Generation attributes are kept when the inputs
    are consecutive pieces of one generation (shards or parts, in index order).

    Args:
        output: the merged file.
        inputs: dataset files, in the order their rows are wanted.
        chunk: rows copied at a time.
        attrs: extra root attributes of the output.

    Raises:
        DatasetError: a missing input, schemas that differ (tier, sample rate, names, ranges...), or
            pieces of one generation that overlap.
    """
    if not inputs:
        raise DatasetError("merge needs at least one input dataset")
    out = Path(output)
    readers = []
    try:
        for p in inputs:
            readers.append(Dataset(p))
        schema = readers[0].schema
        for r in readers[1:]:
            diff = schema.differences(r.schema)
            if diff:
                raise DatasetError(
                    f"cannot merge {r.path} into {readers[0].path}: schemas differ: " + "; ".join(diff)
                )
        generation = _merged_generation(readers)
        notes = sorted({n for r in readers for n in r.schema.midi_notes})
        merged_schema = DatasetSchema(**{**asdict(schema), "midi_notes": tuple(notes)})
        first = readers[0].h5["preset_data/keys"]
        base_data = readers[0].preset_data(first[0].decode()) if len(first) else None
        with DatasetWriter(out, merged_schema, mode="w", atomic=True, base_data=base_data) as w:
            for r in readers:
                w.copy_from(r, chunk)
            w.set_attrs(**(generation or {}), **(attrs or {}))
        return out
    finally:
        for r in readers:
            r.close()
