"""ISO 639-1 language codes, and the two vocabularies a candidature and a directory search share: its languages
and the publics it receives (here rather than with the candidature's models, which a search need not build)."""

from typing import Annotated, Literal

from pydantic import AfterValidator

from msp.documented import Documented

ISO_639_1 = frozenset(
    """aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv
    dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig
    ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh
    mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru
    rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug
    uk ur uz ve vi vo wa wo xh yi yo za zh zu""".split()  # noqa: SIM905 - reads better as one block
)


def _language(value: str) -> str:
    if value not in ISO_639_1:
        raise ValueError(f"'{value}' is not an ISO 639-1 code (two lowercase letters, e.g. fr, en)")
    return value


Language = Annotated[str, AfterValidator(_language), Documented(enum=sorted(ISO_639_1))]
Public = Literal["enfants", "adolescents", "adultes"]
