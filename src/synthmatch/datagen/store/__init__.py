"""The dataset file: a versioned HDF5 schema, a row writer, a reader, and merging.

Layout (schema version 1). N examples, Nc continuous and Nk categorical parameters of the tier:

    /                       attrs: format, schema_version, tier, sample_rate, duration_s, note_duration_s,
                            velocity, midi_notes, base_preset, audio_dtype, channels, seed, vita_version,
                            synthmatch_version, parameter names/ranges/option counts, modulation
                            source/destination names (see DatasetSchema)
    audio          (N, S) or (N, 2, S)  int16 (full scale 32767) or float16; one example per chunk,
                                        byte-shuffle + gzip: about 90 KB per 2 s mono example
    continuous     (N, Nc)   float32    normalized [0, 1] (linear in raw units, see synth.params)
    categorical    (N, Nk)   int16      option index (raw value - control minimum)
    mod_index      (N, 2)    int64      [start, count] of the example's rows in `modulations`
    modulations    (M,)      MOD_DTYPE  source/destination index, amount and power in [0, 1], flags
    midi_note      (N,)      int16
    source         (N,)      uint8      index into attrs["source_names"]: random, bred, community
    preset_hash    (N,)      S16        Preset.content_hash() of the rendered preset
    data_key       (N,)      S40        key of the structured data (wavetables, LFOs, sample) in /preset_data
    seed_index     (N,)      int64      generator index of the example (-1 for ingested presets)
    name           (N,)      str        preset name
    file           (N,)      str        source file of ingested presets ("" otherwise)
    rms_db, peak   (N,)      float32    level of the stored audio
    preset_data/keys (K,) S40, preset_data/json (K,) str   structured data, de-duplicated by content
    rejections                          attrs: count per reason; dataset `rejected` (seed_index, reason)

Files written by `generate` also carry, as root attributes, `generate_fingerprint` (a hash of everything
that decides the rows), `generate_config` (that configuration as JSON) and `index_start`/`index_stop`
(the generator indices the file covers: each one is a row or a rejection). `merge_datasets` keeps them
when its inputs are consecutive pieces of one generation, so merged shards equal a single-machine run.

Files are written by one writer at a time; generation writes small part files atomically and
assembles them (see `generate`), so a killed run never leaves a torn file.

One module per job: `schema` (DatasetSchema, constants, generation attributes), `codec` (audio to and from
its stored dtype), `writer` (ExampleRow, DatasetWriter), `reader` (Dataset), `merge` (merge_datasets).
"""

from __future__ import annotations

from .codec import audio_from_storage, audio_to_storage
from .merge import merge_datasets
from .reader import Dataset
from .schema import (
    ASSET_KINDS,
    GENERATION_ATTRS,
    REJECTION_REASONS,
    SCHEMA_VERSION,
    SOURCES,
    DatasetError,
    DatasetSchema,
    generation_info,
)
from .writer import DatasetWriter, ExampleRow

__all__ = [
    "SCHEMA_VERSION",
    "SOURCES",
    "REJECTION_REASONS",
    "ASSET_KINDS",
    "DatasetSchema",
    "ExampleRow",
    "DatasetWriter",
    "Dataset",
    "DatasetError",
    "merge_datasets",
    "generation_info",
    "GENERATION_ATTRS",
    "audio_to_storage",
    "audio_from_storage",
]
