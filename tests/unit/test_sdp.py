"""switchboard.sdp.summary: what the dashboard shows of an offer or answer (RFC 4566)."""

import pytest

from switchboard.sdp import summary


def sdp(*lines):
    return ("\r\n".join(lines) + "\r\n").encode()


OFFER = sdp(
    "v=0",
    "o=alice 2890844526 2890844526 IN IP4 10.0.0.9",
    "s=-",
    "c=IN IP4 10.0.0.9",
    "t=0 0",
    "m=audio 49170 RTP/AVP 0 8 9 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
    "a=sendrecv",
)


def test_typical_offer():
    assert summary(OFFER) == {
        "address": "10.0.0.9", "port": 49170,
        "codecs": ["PCMU", "PCMA", "G722", "telephone-event"], "direction": "sendrecv",
    }


def test_static_payload_names_without_rtpmap():
    s = summary(sdp("v=0", "c=IN IP4 192.0.2.1", "m=audio 4000 RTP/AVP 0 3 4 8 9 18 13"))
    assert s["codecs"] == ["PCMU", "GSM", "G723", "PCMA", "G722", "G729", "13"]
    assert s["direction"] == "sendrecv"  # the default


def test_rtpmap_names_dynamic_payloads():
    s = summary(sdp("v=0", "c=IN IP4 192.0.2.1", "m=audio 5004 RTP/AVP 96 97 0",
                    "a=rtpmap:96 opus/48000/2", "a=rtpmap:97 speex/16000"))
    assert s["codecs"] == ["opus", "speex", "PCMU"]


def test_answer_with_one_codec():
    answer = sdp("v=0", "o=bob 1 1 IN IP4 10.0.0.8", "s=-", "c=IN IP4 10.0.0.8", "t=0 0",
                 "m=audio 3456 RTP/AVP 8", "a=rtpmap:8 PCMA/8000")
    assert summary(answer) == {"address": "10.0.0.8", "port": 3456, "codecs": ["PCMA"],
                               "direction": "sendrecv"}


@pytest.mark.parametrize("direction", ["sendonly", "recvonly", "inactive", "sendrecv"])
def test_direction_attribute(direction):
    s = summary(sdp("v=0", "c=IN IP4 10.0.0.9", "m=audio 4000 RTP/AVP 0", "a=" + direction))
    assert s["direction"] == direction


def test_hold_old_style_zero_address_and_sendonly():
    # RFC 2543 hold: c=0.0.0.0; RFC 3264 hold: a=sendonly at session level
    s = summary(sdp("v=0", "c=IN IP4 0.0.0.0", "a=sendonly", "t=0 0", "m=audio 4000 RTP/AVP 0"))
    assert s["address"] == "0.0.0.0"
    assert s["direction"] == "sendonly"


def test_media_level_connection_overrides_session_level():
    s = summary(sdp("v=0", "c=IN IP4 10.0.0.1", "t=0 0", "m=audio 4000 RTP/AVP 0",
                    "c=IN IP4 10.0.0.2"))
    assert s["address"] == "10.0.0.2"


def test_only_first_media_stream():
    s = summary(sdp("v=0", "c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP 0", "a=sendonly",
                    "m=video 5000 RTP/AVP 31", "a=rtpmap:31 H261/90000", "a=inactive",
                    "c=IN IP4 10.0.0.99"))
    assert s == {"address": "10.0.0.1", "port": 4000, "codecs": ["PCMU"],
                 "direction": "sendonly"}


def test_multicast_address_with_ttl():
    s = summary(sdp("v=0", "c=IN IP4 224.2.1.1/127", "m=audio 49170 RTP/AVP 0"))
    assert s["address"] == "224.2.1.1"


def test_port_with_count_and_ipv6():
    s = summary(sdp("v=0", "c=IN IP6 2001:db8::1", "m=audio 49170/2 RTP/AVP 0"))
    assert s["address"] == "2001:db8::1"
    assert s["port"] == 49170


def test_port_zero_rejected_stream():
    s = summary(sdp("v=0", "c=IN IP4 10.0.0.1", "m=audio 0 RTP/AVP 0"))
    assert s["port"] == 0


def test_lf_only_line_ends():
    s = summary(b"v=0\nc=IN IP4 10.0.0.3\nm=audio 7078 RTP/AVP 8\na=inactive\n")
    assert s == {"address": "10.0.0.3", "port": 7078, "codecs": ["PCMA"],
                 "direction": "inactive"}


def test_codec_list_bounded():
    payloads = " ".join(str(p) for p in range(96, 120))
    s = summary(sdp("v=0", "c=IN IP4 10.0.0.1", "m=audio 4000 RTP/AVP " + payloads))
    assert s["codecs"] == [str(p) for p in range(96, 104)]


@pytest.mark.parametrize("port", ["99999999999999999999", "\u00b2", "\u0663", "-5", "x"])
def test_odd_media_ports_give_zero(port):
    s = summary(sdp("v=0", "c=IN IP4 10.0.0.1", "m=audio %s RTP/AVP 0" % port))
    assert s["port"] == 0


def test_malformed_media_line():
    s = summary(sdp("v=0", "c=IN IP4 10.0.0.1", "m=audio"))
    assert s["port"] == 0
    assert s["codecs"] == []
    s = summary(sdp("v=0", "m=audio port RTP/AVP 0"))
    assert s["port"] == 0
    assert s["address"] == ""


@pytest.mark.parametrize("body", [
    b"",
    None,
    b"--boundary42\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n",
    b"<?xml version='1.0'?><x/>",
    b"hello",
    b"\r\nv=0\r\n",
    b"v=0\r\n\xff\xfe\r\nm=audio 4000 RTP/AVP 0\r\n",  # not UTF-8
])
def test_non_sdp_bodies(body):
    assert summary(body) is None
