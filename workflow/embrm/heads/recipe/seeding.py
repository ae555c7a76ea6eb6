"""``seeding``: the seeds of a model and of the members of an ensemble, and which is evaluated.

``released``: member ``m`` sets torch's seed to ``seed·42 + m`` before the network is built and
draws its batches from the same generator, continued; an ensemble's member ``i`` is the released
member ``study_member − i`` (same run seed, split ``random_state = 42 + study_member − i``), so
member 0, which ``first`` evaluates, is the one model the released evaluation loads.
``embrm``: torch's seed is the run seed, batches come from their own generator seeded with it, and
an ensemble's member ``i`` has the seed ``int_seed(seed, head_type, "member", i)``.

clf-lgb has no torch seed: under either value its booster (``tuned``) takes the member's run seed
and the notebook's sets none, so only the members' numbering and the ``example`` split's
``random_state`` follow this component.
"""

from __future__ import annotations

from ...errors import ConfigError
from ...seeding import int_seed
from .. import study
from . import Choices, Component


class Released:
    @staticmethod
    def torch_seed(seed: int, member: int) -> int:
        return study.torch_seed(seed, member)

    @staticmethod
    def batch_generator(torch, seed: int):
        generator = torch.Generator()
        generator.set_state(torch.get_rng_state())  # continued after the initialization
        return generator

    @staticmethod
    def members(head_type: str, seed: int, params: dict, count: int) -> list[tuple[int, dict]]:
        """(seed, parameter overrides) of each member of an ensemble of ``count``."""
        last = params["study_member"]
        if count > last + 1:
            raise ConfigError(
                f"config key 'heads.*.members': {count} members under seeding 'released' "
                f"(protocol 'study') need study members {last} down to {last - count + 1}; at "
                f"most study_member + 1 = {last + 1}"
            )
        return [(seed, {"study_member": last - i}) for i in range(count)]


class Embrm:
    @staticmethod
    def torch_seed(seed: int, member: int) -> int:
        return seed

    @staticmethod
    def batch_generator(torch, seed: int):
        return torch.Generator().manual_seed(seed)

    @staticmethod
    def members(head_type: str, seed: int, params: dict, count: int) -> list[tuple[int, dict]]:
        return [(int_seed(seed, head_type, "member", i), {}) for i in range(count)]


COMPONENT = Component(
    key="seeding",
    description="seeds of the model, its batches and an ensemble's members: 'released' "
    "(seed·42 + member, evaluated member = the last) or 'embrm'",
    families=("torch", "lgb"),
    choices=Choices({"released": Released(), "embrm": Embrm()}),
    presets={"study": "released", "embrm": "embrm"},
)
