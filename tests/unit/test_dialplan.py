"""The PBX dialplan (lib/switchboard/dialplan.py): settings, groups, forwarding, DND,
intercom and feature codes, as pure logic without a proxy."""

import pytest

from switchboard.dialplan import MAX_HOPS, Dialplan, configured

USERS = {u: "" for u in ("1001", "1002", "1003", "1004", "1005", "1006")}


def env(**settings):
    return lambda name: settings.get(name)


class Phones:
    """contacts(user) for the dialplan: who is registered."""

    def __init__(self, *users):
        self.registered = set(users)

    def __call__(self, user):
        if user in self.registered:
            return [("sip:%s@10.0.0.%s:5060" % (user, user[-1]), ("10.0.0." + user[-1], 5060))]
        return []


def plan_for(dp, dialled, phones, caller="1006"):
    got = dp.start(dialled, caller, phones)
    assert got is not None, "%s was not routed by the dialplan" % dialled
    return got


def rung(stage):
    return sorted(uri.split("@")[0][4:] for uri, dest, headers in stage.targets)


ALL = Phones("1001", "1002", "1003", "1004", "1005", "1006")


# settings ------------------------------------------------------------------------
def test_configured_only_when_a_pbx_setting_has_a_value():
    assert not configured(env())
    assert not configured(env(RING_GROUPS="  ", SIP_USERS="1001"))
    assert configured(env(DND="1005"))
    assert configured(env(HUNT_TIMEOUT=15))


def test_good_settings_parse_without_errors():
    dp = Dialplan(env(RING_GROUPS="600=1001,1002,1003; 610=1004,1005",
                      HUNT_GROUPS="601=1003,1004,1001", HUNT_TIMEOUT=15,
                      ALIASES="reception=600, alice=1001, 9=600",
                      FORWARD_ALWAYS="1004=1002", FORWARD_BUSY="1001=1002, 1003=600",
                      FORWARD_NOANSWER="1002=601", FORWARD_NOANSWER_AFTER="20", DND="1005",
                      INTERCOM="1001,1002"), USERS)
    assert dp.errors == []
    assert dp.groups["600"] == (False, ["1001", "1002", "1003"])
    assert dp.groups["601"] == (True, ["1003", "1004", "1001"])
    assert dp.aliases == {"reception": "600", "alice": "1001", "9": "600"}
    assert dp.hunt_timeout == 15000 and dp.noanswer_after == 20000
    assert dp.view()["1003"] == {"dnd": False, "always": None, "busy": "600", "noanswer": None}
    assert dp.view()["1005"]["dnd"] is True
    assert dp.intercom == ["1001", "1002"]


@pytest.mark.parametrize("settings, error", [
    ({"RING_GROUPS": "600=1001,1099"}, "1099 in group 600 is not an extension"),
    ({"RING_GROUPS": "600=1001,600"}, "group 600 is inside itself"),
    ({"RING_GROUPS": "600=1001,610; 610=1002,600"}, "is inside itself"),
    ({"RING_GROUPS": "600"}, "group 600 has no members"),
    ({"RING_GROUPS": "600=,"}, "group 600 has no members"),
    ({"RING_GROUPS": "6 0=1001"}, "'6 0' is not a new group name"),
    ({"RING_GROUPS": "1001=1002"}, "'1001' is not a new group name"),
    ({"RING_GROUPS": "600=1001; 600=1002"}, "'600' is not a new group name"),
    ({"HUNT_GROUPS": "601=1099"}, "group 601 has no valid member"),
    ({"HUNT_TIMEOUT": "fast"}, "HUNT_TIMEOUT='fast' is not a number"),
    ({"FORWARD_NOANSWER_AFTER": "0"}, "FORWARD_NOANSWER_AFTER='0'"),
    ({"ALIASES": "bob=1099"}, "ALIASES: bob=1099: no such extension"),
    ({"ALIASES": "bob"}, "ALIASES: 'bob' is not NAME=TARGET; ignored"),
    ({"ALIASES": "1001=1002"}, "ALIASES: '1001' is not a new name"),
    ({"FORWARD_ALWAYS": "1001=1099"}, "FORWARD_ALWAYS: 1001=1099: no such"),
    ({"FORWARD_BUSY": "1001=1001"}, "FORWARD_BUSY: 1001 forwards to itself"),
    ({"FORWARD_NOANSWER": "1001"}, "FORWARD_NOANSWER: '1001' is not EXTENSION=TARGET"),
    ({"FORWARD_BUSY": "1001="}, "FORWARD_BUSY: 1001=: no such extension or group"),
    ({"DND": "1001,bogus"}, "DND: bogus is not an extension"),
    ({"INTERCOM": "1001,1099"}, "INTERCOM: 1099 is not an extension"),
])
def test_bad_settings_are_reported_and_ignored_never_fatal(settings, error):
    dp = Dialplan(env(**settings), USERS)
    assert any(error in e for e in dp.errors), dp.errors


def test_good_settings_are_kept_next_to_bad_ones():
    dp = Dialplan(env(RING_GROUPS="600=1001,1099; 6 0=1002; 610=1003", ALIASES="bob=1099, al=1001",
                      FORWARD_BUSY="1001=1099, 1002=1003", DND="x y, 1004"), USERS)
    assert len(dp.errors) == 5, dp.errors
    assert dp.groups == {"600": (False, ["1001"]), "610": (False, ["1003"])}
    assert dp.aliases == {"al": "1001"}
    assert dp.view() == {"1002": {"dnd": False, "always": None, "busy": "1003", "noanswer": None},
                         "1004": {"dnd": True, "always": None, "busy": None, "noanswer": None}}


def test_group_cycle_keeps_the_rest_of_both_groups():
    dp = Dialplan(env(RING_GROUPS="600=1001,610; 610=1002,600"), USERS)
    assert dp.groups["600"] == (False, ["1001", "1002"])
    assert dp.groups["610"] == (False, ["1002", "1001"])


def test_without_sip_users_any_name_is_an_extension():
    dp = Dialplan(env(RING_GROUPS="600=2001,2002", FORWARD_BUSY="2001=2003"), {})
    assert dp.errors == []
    assert dp.groups["600"][1] == ["2001", "2002"]


def test_values_may_be_integers_from_settings_toml():
    dp = Dialplan(env(DND=1005, HUNT_TIMEOUT=7, HUNT_GROUPS="601=1001"), USERS)
    assert dp.errors == [] and dp.setting("1005", 0) and dp.hunt_timeout == 7000


# ring groups -----------------------------------------------------------------------
def test_ring_group_rings_every_registered_member_at_once():
    dp = Dialplan(env(RING_GROUPS="600=1001,1002,1003"), USERS)
    plan, stage = plan_for(dp, "600", Phones("1001", "1003"))
    assert stage.status == 0 and rung(stage) == ["1001", "1003"] and stage.timeout == 0
    assert plan.callee == "600"
    assert dp.next(plan, 486, ALL) is None  # nothing further: relay the best response


def test_ring_group_skips_dnd_members_and_answers_480_when_nobody_can_ring():
    dp = Dialplan(env(RING_GROUPS="600=1001,1002", DND="1002"), USERS)
    assert rung(plan_for(dp, "600", ALL)[1]) == ["1001"]
    stage = plan_for(dp, "600", Phones("1002"))[1]
    assert (stage.status, stage.reason, stage.targets) == (480, "Temporarily Unavailable", [])


def test_group_no_answer_forward_times_the_group_out():
    dp = Dialplan(env(RING_GROUPS="600=1001,1002", FORWARD_NOANSWER="600=1005",
                      FORWARD_NOANSWER_AFTER=9), USERS)
    plan, stage = plan_for(dp, "600", ALL)
    assert stage.timeout == 9000
    nxt = dp.next(plan, 487, ALL)
    assert rung(nxt) == ["1005"] and plan.callee == "600"


# hunt groups -----------------------------------------------------------------------
def test_hunt_group_rings_members_one_after_the_other():
    dp = Dialplan(env(HUNT_GROUPS="601=1003,1004,1001", HUNT_TIMEOUT=15), USERS)
    plan, stage = plan_for(dp, "601", ALL)
    assert rung(stage) == ["1003"] and stage.timeout == 15000
    stage = dp.next(plan, 487, ALL)  # 1003 timed out
    assert rung(stage) == ["1004"] and stage.timeout == 15000
    stage = dp.next(plan, 486, ALL)  # 1004 busy: the next member too
    assert rung(stage) == ["1001"] and stage.timeout == 0  # the last rings until Timer C
    assert dp.next(plan, 408, ALL) is None


def test_hunt_group_skips_unregistered_and_dnd_members():
    dp = Dialplan(env(HUNT_GROUPS="601=1003,1004,1001", DND="1004"), USERS)
    plan, stage = plan_for(dp, "601", Phones("1004", "1001"))
    assert rung(stage) == ["1001"]
    assert dp.next(plan, 487, ALL) is None
    stage = plan_for(dp, "601", Phones("1004"))[1]
    assert stage.status == 480


def test_hunt_group_then_its_no_answer_forward():
    dp = Dialplan(env(HUNT_GROUPS="601=1003,1004", FORWARD_NOANSWER="601=1005"), USERS)
    plan, stage = plan_for(dp, "601", ALL)
    assert rung(stage) == ["1003"]
    stage = dp.next(plan, 487, ALL)
    assert rung(stage) == ["1004"] and stage.timeout == dp.hunt_timeout  # group forward waits
    assert rung(dp.next(plan, 487, ALL)) == ["1005"]


# aliases -------------------------------------------------------------------------------
def test_aliases_match_names_case_insensitively_and_short_numbers():
    dp = Dialplan(env(RING_GROUPS="600=1001,1002", ALIASES="Reception=600, alice=1001, 9=600"),
                  USERS)
    assert rung(plan_for(dp, "RECEPTION", ALL)[1]) == ["1001", "1002"]
    assert rung(plan_for(dp, "9", ALL)[1]) == ["1001", "1002"]
    plan, stage = plan_for(dp, "Alice", ALL)
    assert rung(stage) == ["1001"] and plan.callee == "Alice"
    assert dp.start("bob", "1002", ALL) is None  # not ours: the router's 404


def test_plain_extension_without_settings_is_left_to_the_router():
    dp = Dialplan(env(DND="1005"), USERS)
    assert dp.start("1001", "1002", ALL) is None
    assert dp.start("1099", "1002", ALL) is None


# forwarding ------------------------------------------------------------------------------
def test_forward_always_before_ringing():
    dp = Dialplan(env(FORWARD_ALWAYS="1001=1002"), USERS)
    plan, stage = plan_for(dp, "1001", ALL)
    assert rung(stage) == ["1002"] and plan.callee == "1001" and plan.hops == 1


def test_forward_busy_is_the_next_stage_on_486_or_600():
    dp = Dialplan(env(FORWARD_BUSY="1001=1002"), USERS)
    for status in (486, 600, 603):
        plan, stage = plan_for(dp, "1001", ALL)
        assert rung(stage) == ["1001"] and stage.timeout == 0
        assert rung(dp.next(plan, status, ALL)) == ["1002"]
    plan, stage = plan_for(dp, "1001", ALL)
    assert dp.next(plan, 404, ALL) is None  # not busy, and no no-answer forward


def test_forward_noanswer_sets_a_timeout_then_forwards():
    dp = Dialplan(env(FORWARD_NOANSWER="1001=1002", FORWARD_NOANSWER_AFTER=20), USERS)
    plan, stage = plan_for(dp, "1001", ALL)
    assert rung(stage) == ["1001"] and stage.timeout == 20000
    assert dp.next(plan, 486, ALL) is None  # busy is not no-answer
    plan, stage = plan_for(dp, "1001", ALL)
    assert rung(dp.next(plan, 487, ALL)) == ["1002"]


def test_unregistered_extension_goes_to_its_no_answer_forward_at_once():
    dp = Dialplan(env(FORWARD_NOANSWER="1001=1002"), USERS)
    plan, stage = plan_for(dp, "1001", Phones("1002"))
    assert rung(stage) == ["1002"]
    dp = Dialplan(env(FORWARD_BUSY="1001=1002"), USERS)
    stage = plan_for(dp, "1001", Phones("1002"))[1]
    assert stage.status == 480


def test_forward_to_a_group_and_an_alias():
    dp = Dialplan(env(RING_GROUPS="600=1002,1003", ALIASES="team=600",
                      FORWARD_ALWAYS="1001=team"), USERS)
    assert dp.errors == []
    assert rung(plan_for(dp, "1001", ALL)[1]) == ["1002", "1003"]


def test_forwarding_loop_is_cut_with_482():
    dp = Dialplan(env(FORWARD_ALWAYS="1001=1002, 1002=1001"), USERS)
    plan, stage = plan_for(dp, "1001", ALL)
    assert (stage.status, stage.reason) == (482, "Loop Detected")
    dp = Dialplan(env(FORWARD_BUSY="1001=1002, 1002=1001"), USERS)
    plan, stage = plan_for(dp, "1001", ALL)
    stage = dp.next(plan, 486, ALL)
    assert rung(stage) == ["1002"]
    assert dp.next(plan, 486, ALL).status == 482


def test_at_most_five_forwards():
    chain = ", ".join("%d=%d" % (1001 + i, 1002 + i) for i in range(5))
    users = {str(u): "" for u in range(1001, 1010)}
    dp = Dialplan(env(FORWARD_ALWAYS=chain), users)
    plan, stage = plan_for(dp, "1001", Phones(*users))
    assert rung(stage) == ["1006"] and plan.hops == MAX_HOPS
    chain = ", ".join("%d=%d" % (1001 + i, 1002 + i) for i in range(6))
    dp = Dialplan(env(FORWARD_ALWAYS=chain), users)
    stage = plan_for(dp, "1001", Phones(*users))[1]
    assert (stage.status, stage.reason) == (482, "Too Many Forwards")


# DND -----------------------------------------------------------------------------------------
def test_dnd_answers_486_or_goes_to_the_busy_forward():
    dp = Dialplan(env(DND="1005"), USERS)
    stage = plan_for(dp, "1005", ALL)[1]
    assert (stage.status, stage.reason, stage.targets) == (486, "Busy Here", [])
    dp = Dialplan(env(DND="1005", FORWARD_BUSY="1005=1001"), USERS)
    assert rung(plan_for(dp, "1005", ALL)[1]) == ["1001"]


# feature codes --------------------------------------------------------------------------------
def test_feature_codes_change_only_the_callers_own_settings():
    dp = Dialplan(env(RING_GROUPS="600=1001,1002", ALIASES="bob=1002"), USERS)
    before = dp.changes
    assert dp.feature("*78", "1001") == (480, "Do Not Disturb On")
    assert dp.view()["1001"]["dnd"] is True and "1002" not in dp.view()
    assert dp.start("1001", "1002", ALL)[1].status == 486
    assert dp.feature("*79", "1001") == (480, "Do Not Disturb Off")
    assert dp.start("1001", "1002", ALL)[1].targets
    assert dp.feature("*72bob", "1001") == (480, "Forward To bob On")
    assert dp.view()["1001"]["always"] == "1002"
    assert dp.feature("*90600", "1001") == (480, "Busy Forward To 600 On")
    assert dp.feature("*921003", "1001") == (480, "No-Answer Forward To 1003 On")
    assert dp.view()["1001"] == {"dnd": False, "always": "1002", "busy": "600",
                                 "noanswer": "1003"}
    assert dp.feature("*73", "1001") == (480, "Forward Off")
    assert dp.feature("*91", "1001") == (480, "Busy Forward Off")
    assert dp.feature("*93", "1001") == (480, "No-Answer Forward Off")
    assert dp.view()["1001"] == {"dnd": False, "always": None, "busy": None, "noanswer": None}
    assert dp.changes == before + 8
    assert dp.feature("*79", "1001") == (480, "Do Not Disturb Off")
    assert dp.changes == before + 8  # no change, nothing to save


@pytest.mark.parametrize("dialled, caller, allowed, answer", [
    ("*72", "1001", True, (484, "Address Incomplete")),
    ("*721099", "1001", True, (404, "No Such Number 1099")),
    ("*72<x>", "1001", True, (404, "Not Found")),
    ("*721001", "1001", True, (482, "Cannot Forward To Yourself")),
    ("*7812", "1001", True, (484, "Address Incomplete")),
    ("*731002", "1001", True, (484, "Address Incomplete")),
    ("*55", "1001", True, (404, "Unknown Feature Code")),
    ("*78", "1001", False, (403, "Sign In First")),
    ("*78", "1099", True, (403, "Not An Extension")),
    ("*78", "600", True, (403, "Not An Extension")),
])
def test_bad_feature_codes_change_nothing(dialled, caller, allowed, answer):
    dp = Dialplan(env(RING_GROUPS="600=1001,1002"), USERS)
    assert dp.feature(dialled, caller, allowed) == answer
    assert dp.changes == 0 and dp.view() == {}


def test_not_feature_codes():
    dp = Dialplan(env(DND="1005"), USERS)
    for dialled in ("1001", "*", "*8", "*801001", "600"):
        assert dp.feature(dialled, "1001") is None


def test_dashboard_set_and_clear():
    dp = Dialplan(env(RING_GROUPS="600=1001,1002"), USERS)
    assert dp.set("1002", 0, True) is None
    assert dp.set("600", 3, "1003") is None  # a group may forward
    assert dp.set("600", 0, True) == "DND is for extensions, not groups"
    assert dp.set("1099", 0, True) == "no such extension or group: 1099"
    assert dp.set("1001", 1, "1001") == "1001 cannot forward to itself"
    assert dp.set("1001", 1, "1099") == "no such extension or group: 1099"
    assert dp.view() == {"1002": {"dnd": True, "always": None, "busy": None, "noanswer": None},
                         "600": {"dnd": False, "always": None, "busy": None, "noanswer": "1003"}}
    assert dp.set("1002", 0, False) is None
    assert dp.user_rows() == {"600": [False, None, None, "1003"]}


def test_user_rows_and_load_rows_round_trip_over_settings():
    settings = env(DND="1005", FORWARD_BUSY="1001=1002")
    dp = Dialplan(settings, USERS)
    assert dp.user_rows() == {}
    dp.feature("*79", "1005")  # off, against the setting: must be kept as a change
    dp.feature("*721003", "1002")
    rows = dp.user_rows()
    assert rows == {"1005": [False, None, None, None], "1002": [False, "1003", None, None]}
    again = Dialplan(settings, USERS)
    assert again.load_rows(dict(rows, gone=[True, None, None, None])) == ["gone"]
    assert again.view() == dp.view()


# intercom ------------------------------------------------------------------------------------
def test_intercom_adds_auto_answer_headers_to_every_branch():
    dp = Dialplan(env(INTERCOM="1001,1002", FORWARD_ALWAYS="1001=1003"), USERS, "10.0.0.99:5060")
    plan, stage = plan_for(dp, "*801001", ALL, caller="1002")
    assert rung(stage) == ["1001"]  # intercom goes to the phone itself: no forwarding
    headers = stage.targets[0][2]
    assert ("Call-Info", "<sip:10.0.0.99:5060>;answer-after=0") in headers
    assert ("Alert-Info", "<http://127.0.0.1>;info=alert-autoanswer") in headers
    assert plan.callee == "1001"
    assert dp.next(plan, 487, ALL) is None


def test_intercom_refused_where_not_allowed_and_on_dnd():
    dp = Dialplan(env(INTERCOM="1001", DND="1001", ALIASES="bob=1002"), USERS)
    assert plan_for(dp, "*80bob", ALL)[1].status == 403
    assert plan_for(dp, "*801001", ALL)[1].status == 486
    assert plan_for(dp, "*801099", ALL)[1].status == 404
    assert plan_for(dp, "*801003", Phones())[1].status == 403
    dp = Dialplan(env(DND="1004"), USERS)  # INTERCOM unset: every extension
    assert plan_for(dp, "*801003", Phones())[1].status == 480
    assert plan_for(dp, "*801003", ALL)[1].targets[0][2][0][0] == "Call-Info"


def test_group_members_already_reached_or_calling_are_not_rung():
    dp = Dialplan(env(RING_GROUPS="600=1001,1002,1003", HUNT_GROUPS="601=1001,1002",
                      FORWARD_BUSY="1001=600, 1002=601"), USERS)
    plan, stage = plan_for(dp, "1001", ALL, caller="1003")
    assert rung(dp.next(plan, 486, ALL)) == ["1002"]  # not 1001 again, not the caller 1003
    plan, stage = plan_for(dp, "1002", ALL)
    assert rung(dp.next(plan, 486, ALL)) == ["1001"]
    assert rung(plan_for(dp, "600", ALL, caller="1002")[1]) == ["1001", "1003"]
