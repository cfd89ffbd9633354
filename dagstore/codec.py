"""msgpack encoding of node attribute values, exact to the type, that refuses what it cannot encode.

Native msgpack types (None, bool, int, float, str, bytes, list, dict) stay native; everything else
that a DAG keeps in its nodes goes through ext types:

    1 tuple       payload: msgpack array of the items
    2 set         payload: msgpack array of the items, encoded members sorted (equal sets, equal bytes)
    3 frozenset   as set
    4 node        payload: the node key (UTF-8, surrogates passed); decoded by ``resolve_node(key)``
    5 object      payload: [tag, state] for a registered class
    6 big int     payload: two's complement big-endian bytes of an int beyond 64 bits

Nothing is pickled. A value that is none of the above raises `Refused`, so the caller keeps it in
memory. Types that msgpack would pack silently as something else (bytearray and memoryview as
bytes, ExtType and Timestamp as raw ext) are refused too, so decode(encode(v)) is always `v`
with the same types.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

import msgpack

__all__ = ["Codec", "CodecError", "Refused"]

EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
EXT_NODE = 4
EXT_OBJECT = 5
EXT_BIGINT = 6

_new_tuple = tuple.__new__


def _ext(code: int, data: bytes) -> msgpack.ExtType:
    """ExtType without its Python-level argument checks (a third of the cost of a small tuple)."""
    return _new_tuple(msgpack.ExtType, (code, data))


_UNICODE_ERRORS = "surrogatepass"  # file names decoded with surrogateescape must survive
# Packed natively by msgpack's C packer without reaching `default`, but decoded as another type.
_HIJACKED = frozenset({bytearray, memoryview, msgpack.ExtType, msgpack.Timestamp})
_WALK = _HIJACKED | {list, dict}
_MAX_DEPTH = 511
_SORTABLE = frozenset({str, bytes, int})  # value order is total and equal sets sort identically


class CodecError(Exception):
    """A blob that cannot be decoded (unknown tag or ext type, damaged bytes, unknown node key)."""


class Refused(CodecError):
    """A value the codec will not encode; the caller keeps it in memory."""


def _qualified(t: type) -> str:
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _type_name(obj: object) -> str:
    return _qualified(type(obj))


def _refuse_hijacked(value: Any, depth: int = 0) -> None:
    """Walk the lists and dicts msgpack packs natively and refuse the types it would mis-encode.

    `value` is any value (Any, not object: the branches below test `t = type(value)` once, which mypy
    does not narrow `value` through, and testing type(value) again per branch would cost every encode)."""
    t = type(value)
    if t is list:
        types = set(map(type, value))
        if types.isdisjoint(_WALK):  # flat list of scalars or ext-encoded values: the common case
            return
        members: Any = value
    elif t is dict:
        types = set(map(type, value))
        types.update(map(type, value.values()))
        if types.isdisjoint(_WALK):
            return
        members = [*value, *value.values()]
    else:
        if t in _HIJACKED:
            raise Refused(f"cannot encode {_type_name(value)}")
        return
    if not types.isdisjoint(_HIJACKED):
        raise Refused(f"cannot encode {_qualified(next(x for x in types if x in _HIJACKED))}")
    if depth >= _MAX_DEPTH:  # msgpack's own limit; also ends self-containing lists and dicts
        raise Refused(f"cannot encode {_qualified(t)}: nested too deep or cyclic")
    for x in members:
        tx = type(x)
        if tx is list or tx is dict:
            _refuse_hijacked(x, depth + 1)


def _no_check(value: object, depth: int = 0) -> None:
    pass


class _Packers(threading.local):
    """One C packer per nesting depth and thread: ext payloads are packed while an outer pack runs."""

    def __init__(self) -> None:
        self.stack: list[msgpack.Packer] = []
        self.depth = -1


class Codec:
    """Encode and decode node attribute values; node references come back as the same objects."""

    # the node references a caller's node_key/resolve_node keep, if it keeps them there (the SCons adapter's
    # make_codec does): Spiller.own_memory() counts them, Spiller.forget_node_refs() clears them
    node_refs: dict[str, object] | None = None

    def __init__(
        self,
        resolve_node: Callable[[str], object] | None = None,
        node_key: Callable[[object], str | None] | None = None,
        *,
        check_native: bool = True,
    ) -> None:
        """check_native=False skips the walk that refuses bytearray/memoryview/ExtType/Timestamp inside
        lists and dicts (a third to a half of encode time for nested values); only for callers that
        know their values never hold those types, since msgpack would silently change their type."""
        self.resolve_node = resolve_node
        self.node_key = node_key
        self._check = _refuse_hijacked if check_native else _no_check
        self._tls = _Packers()
        self._encoders: dict[type, Callable[[Any], msgpack.ExtType]] = {
            tuple: self._enc_tuple,
            set: self._enc_set,
            frozenset: self._enc_frozenset,
            int: self._enc_bigint,
        }
        self._by_tag: dict[str, tuple[type, Callable[[Any], object]]] = {}
        self._tags: dict[type, str] = {}

    # ---- registry -------------------------------------------------------------------------
    def register(
        self,
        cls: type,
        tag: str | Callable | None = None,
        to_state: Callable[[Any], Any] | None = None,
        from_state: Callable[[Any], Any] | None = None,
    ) -> str:
        """Let instances of exactly `cls` be encoded through their state; returns the stable tag.

        Forms: register(cls), register(cls, "tag"), register(cls, to_state, from_state),
        register(cls, "tag", to_state, from_state). The tag defaults to module.qualname so a
        store written by one process decodes in another that registered the same classes.
        """
        if callable(tag):
            tag, to_state, from_state = None, tag, to_state
        if tag is None:
            tag = f"{cls.__module__}.{cls.__qualname__}"
        if (to_state is None) != (from_state is None):
            raise TypeError("register() needs both to_state and from_state, or neither")
        if to_state is None:
            if getattr(cls, "__setstate__", None) is None:
                raise TypeError(f"{cls.__qualname__} has no __setstate__; pass to_state and from_state")
            # the pickle protocol's methods, read off the class: cls.__getstate__ is the plain function that
            # takes the instance (mypy reads it as bound to the class object); __new__ and __setstate__ are
            # the class's own, whatever their signatures (hence `cls: Any` below)
            to_state = cast(Callable[[Any], Any], cls.__getstate__)

            def from_state(state: Any, cls: Any = cls) -> object:
                obj = cls.__new__(cls)
                obj.__setstate__(state)
                return obj

        assert from_state is not None  # both were given, or both defaulted just above
        old = self._by_tag.get(tag)
        if old is not None and old[0] is not cls:
            raise ValueError(f"tag {tag!r} is already registered for {old[0].__qualname__}")
        if cls in self._encoders and self._tags.get(cls) is None:
            raise ValueError(f"{cls.__qualname__} is encoded natively by the codec")
        self._by_tag[tag] = (cls, from_state)
        self._tags[cls] = tag
        tag_s: str = tag
        getstate = to_state

        def enc(obj: Any) -> msgpack.ExtType:
            state = getstate(obj)
            self._check(state)
            return _ext(EXT_OBJECT, self._pack_nested([tag_s, state]))

        self._encoders[cls] = enc
        return tag

    def registered(self) -> dict[str, type]:
        """Tags and classes this codec decodes, to compare with what a store was written with."""
        return {tag: cls for tag, (cls, _) in self._by_tag.items()}

    # ---- encode -----------------------------------------------------------------------------
    def encode(self, value: object) -> bytes:
        """Bytes for `value`; raises Refused when any part of it cannot be encoded exactly."""
        self._check(value)
        try:
            return self._pack_nested(value)
        except CodecError:
            raise
        except RecursionError:
            raise Refused(f"cannot encode {_type_name(value)}: nested too deep or cyclic") from None
        except (ValueError, OverflowError, TypeError) as e:  # msgpack's own limits (depth, sizes)
            raise Refused(f"cannot encode {_type_name(value)}: {e}") from None

    def _new_packer(self) -> msgpack.Packer:
        return msgpack.Packer(
            default=self._default, strict_types=True, use_bin_type=True, unicode_errors=_UNICODE_ERRORS
        )

    def _pack_nested(self, value: object) -> bytes:
        tls = self._tls
        depth = tls.depth + 1
        stack = tls.stack
        if depth == len(stack):
            stack.append(self._new_packer())
        tls.depth = depth
        try:
            return stack[depth].pack(value)
        finally:
            tls.depth = depth - 1

    def _default(self, obj: object) -> msgpack.ExtType:
        enc = self._encoders.get(type(obj))
        if enc is not None:
            return enc(obj)
        if self.node_key is not None:
            key = self.node_key(obj)
            if key is not None:
                return _ext(EXT_NODE, key.encode("utf-8", _UNICODE_ERRORS))
        raise Refused(f"cannot encode {_type_name(obj)}")

    def _enc_tuple(self, obj: tuple) -> msgpack.ExtType:
        items = list(obj)
        self._check(items)
        return _ext(EXT_TUPLE, self._pack_nested(items))

    def _members(self, obj: set | frozenset) -> bytes:
        """Array of the encoded members in byte order, so equal sets give equal bytes."""
        types = set(map(type, obj))
        if len(types) == 1 and types <= _SORTABLE:  # one totally ordered type: sort by value
            return self._pack_nested(sorted(obj))
        if self.node_key is not None and len(types) == 1 and next(iter(types)) not in self._encoders:
            # a set of nodes (SCons' implicit_set, ...): sort by node key, pack in one call
            node_key = self.node_key
            keys = [node_key(m) for m in obj]
            if None not in keys:
                keys.sort()
                # `None not in keys` leaves every key a str; mypy cannot narrow a list's items (and a cast
                # or a check per key would cost every set of nodes encoded)
                return self._pack_nested(
                    [
                        _ext(EXT_NODE, k.encode("utf-8", _UNICODE_ERRORS))  # type: ignore[union-attr]
                        for k in keys
                    ]
                )
        self._check(list(obj))
        members = [self._pack_nested(m) for m in obj]
        members.sort()
        n = len(members)
        if n < 16:
            head = bytes((0x90 | n,))
        elif n < 0x10000:
            head = b"\xdc" + n.to_bytes(2, "big")
        else:
            head = b"\xdd" + n.to_bytes(4, "big")
        return head + b"".join(members)

    def _enc_set(self, obj: set) -> msgpack.ExtType:
        return _ext(EXT_SET, self._members(obj))

    def _enc_frozenset(self, obj: frozenset) -> msgpack.ExtType:
        return _ext(EXT_FROZENSET, self._members(obj))

    def _enc_bigint(self, obj: int) -> msgpack.ExtType:
        # only reached for ints outside msgpack's 64-bit range
        return _ext(EXT_BIGINT, obj.to_bytes(obj.bit_length() // 8 + 1, "big", signed=True))

    # ---- decode -----------------------------------------------------------------------------
    def decode(self, blob: bytes) -> object:
        """The value `blob` was encoded from; node references resolve to the live node objects."""
        try:
            return self._unpack(blob)
        except CodecError:
            raise
        except Exception as e:  # damaged bytes: msgpack raises several unrelated types
            detail = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            raise CodecError(f"cannot decode {len(blob)}-byte value: {detail}") from None

    def _unpack(self, data: bytes) -> Any:  # whatever the blob holds (msgpack is untyped)
        return msgpack.unpackb(
            data,
            ext_hook=self._ext_hook,
            raw=False,
            strict_map_key=False,
            use_list=True,
            unicode_errors=_UNICODE_ERRORS,
        )

    def _ext_hook(self, code: int, data: bytes) -> object:
        if code == EXT_TUPLE:
            return tuple(self._unpack(data))
        if code == EXT_NODE:
            key = data.decode("utf-8", _UNICODE_ERRORS)
            if self.resolve_node is None:
                raise CodecError(f"node reference {key!r} but no resolve_node was given")
            try:
                return self.resolve_node(key)
            except CodecError:
                raise
            except Exception as e:
                raise CodecError(f"cannot resolve node {key!r}: {type(e).__name__}: {e}") from None
        if code == EXT_OBJECT:
            tag, state = self._unpack(data)
            entry = self._by_tag.get(tag)
            if entry is None:
                raise CodecError(f"unknown class tag {tag!r} (not registered with this codec)")
            return entry[1](state)
        if code == EXT_SET:
            return set(self._unpack(data))
        if code == EXT_FROZENSET:
            return frozenset(self._unpack(data))
        if code == EXT_BIGINT:
            return int.from_bytes(data, "big", signed=True)
        raise CodecError(f"unknown ext type {code}")
