"""Everything that talks to vita (the Vital bindings): parameters, presets, rendering."""

from synthmatch.synth._vita import VitaUnavailable, require_vita, vita_available, vita_version
from synthmatch.synth.params import ControlSpec, ParamSpace, TierSpace, param_space
from synthmatch.synth.presets import InvalidModulationError, Modulation, ParamVector, Preset, PresetError
from synthmatch.synth.render import Renderer, RenderError, RenderResult

__all__ = [
    "ControlSpec",
    "InvalidModulationError",
    "Modulation",
    "ParamSpace",
    "ParamVector",
    "Preset",
    "PresetError",
    "RenderError",
    "RenderResult",
    "Renderer",
    "TierSpace",
    "VitaUnavailable",
    "param_space",
    "require_vita",
    "vita_available",
    "vita_version",
]
