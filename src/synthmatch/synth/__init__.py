"""Everything that talks to vita (the Vital bindings): parameters, presets, rendering."""

from synthmatch.synth._vita import VitaUnavailable, vita_available
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
    "vita_available",
]
