"""The stateful proxy's transaction layer (RFC 3261 §16, §17; RFC 3581): Kamailio's tm.

Owns the server and client transactions (through transaction.py's state machine), the
response context of each request it forwards, forking and the answers Switchboard gives
itself. Where a request goes is not decided here: the Router (router.py) maps it to a
Decision (an answer, or targets forked in parallel as one stage); when a stage ends without
a 2xx, or its timeout fires, Router.next() gives the next stage (hunt group, forwarding on
busy or no answer) while the caller keeps hearing the ringing already relayed.

Response context (§16.7): provisional responses are relayed at once; the first 2xx wins and
cancels the other branches (every 2xx to an INVITE goes upstream); otherwise the best final
response of the last stage is relayed when it is over (answers from branches of earlier
stages, cancelled when their stage ended, are ACKed and dropped; their 2xx still go up).

Every method that may send takes `out`, the list of (bytes, (ip, port)) the current entry
point (Engine.receive or Engine.tick) returns.
"""

from switchboard import VERSION
from switchboard.message import (
    URI,
    ParseError,
    address_user,
    fnv,
    is_ipv4,
    to_tag,
)
from switchboard.transaction import (
    ACK,
    ANSWER,
    ASK,
    CANCEL,
    DELIVER,
    INVITE_CLIENT,
    INVITE_SERVER,
    NON_INVITE_CLIENT,
    SEND,
    SEND_CANCEL,
    STRAY_2XX,
    TIMEOUT,
    ClientTransaction,
    event_for,
    hop_request,
    sibling_key,
)

SERVER = "Switchboard/" + VERSION
# Methods that create a dialog: the proxy records its route in them.
DIALOG_METHODS = ("INVITE", "SUBSCRIBE", "REFER", "NOTIFY")
CLIENT_KINDS = (INVITE_CLIENT, NON_INVITE_CLIENT)


def our_tag(req, status):
    """The To tag of our answer to req: the same for the same Call-ID and status."""
    return "sb" + fnv(req.get("call-id") or "", status) if status > 100 else None


def class_rank(status):
    """Lower ranks win (§16.7 step 6): 6xx, then 3xx, 4xx, 5xx."""
    if status >= 600:
        return 0
    return status // 100


class Context:
    """The response context of one request we forward (§16.7): its branches, the best
    final response so far, the router's plan and the current stage."""

    def __init__(self, server, request):
        self.server = server  # the ServerTransaction answered upstream
        self.request = request  # the request as routed, copied for each branch; dropped
        self.branches = []  # ClientTransactions of this and earlier stages still of use
        self.best = None  # the best final response received (a Message), or None
        self.best_status = 0  # its status; 408 when only timeouts ended branches; 0 none
        self.cancelled = False  # the caller sent CANCEL
        self.call = None  # the call record an initial INVITE started
        self.plan = None  # the router's private state for Router.next()
        self.stage = 0  # the current stage (1 for the first decision's targets)
        self.stage_due = None  # ms when the stage's timeout fires, None for none
        self.record = False  # add Record-Route to each branch
        self.hops = 70  # Max-Forwards of the request received
        self.prefix = ""  # branch prefix: the loop-detection hash (§16.6 step 8)

    def pending(self, stage=None):
        """Branches still waiting for a final response (of stage, when given)."""
        return [b for b in self.branches if b.pending() and (stage is None or b.stage == stage)]


class Proxy:
    """Transactions, forwarding and the response context; answers and relays.

    config: max_message_size and timer_c; here: our address (router.Here); txns: the
    TransactionTable; router: the routing policy; calls: call records (calls.Calls);
    counters: the engine's counter dict; seed: makes tags and branches unique per boot.
    """

    def __init__(self, config, here, txns, router, calls, counters, seed=0):
        self.config = config
        self.here = here
        self.txns = txns
        self.router = router
        self.calls = calls
        self.counters = counters
        self.seed = "%06x" % (seed & 0xFFFFFF)
        self.serial = 0
        self.staged = []  # contexts whose stage has a timeout running

    def new_id(self):
        """A token unique within this boot (tags, branches)."""
        self.serial += 1
        return "%s%x" % (self.seed, self.serial)

    # answering -------------------------------------------------------------
    def answer(self, out, req, status, reason, headers=(), txn=None, dest=None, now=0,
               ask=False):
        """Answer req ourselves: on its server transaction txn (stateful), or, without one,
        statelessly to dest. The only way Switchboard makes a response of its own. Its To
        tag comes from Call-ID and status (our_tag), so that the answer rebuilt for a
        retransmission is the same. ask: whoever made headers can make them again (a
        retransmitted request's answer is rebuilt through it: transaction.ASK)."""
        if txn is None:
            self.again(req, status, reason, headers, dest, out)
            self._count_answer(status)
            return
        resp = txn.request.response(status, reason, headers, our_tag(txn.request, status),
                                    SERVER)
        self._send(txn, resp, now, out, txn.context,
                   ASK if ask else (None if headers else ANSWER))

    @staticmethod
    def again(req, status, reason, headers, dest, out):
        """Our answer to req, sent statelessly: also a finished transaction's answer rebuilt
        for its retransmitted request (transaction.ANSWER and ASK)."""
        out.append((req.response(status, reason, headers, our_tag(req, status),
                                 SERVER).to_bytes(), dest))

    def _send(self, txn, resp, now, out, ctx, again=None):
        """Send resp (ours or relayed) on server transaction txn; again: how its answer is
        rebuilt once the transaction is finished (None: its bytes are kept)."""
        status = resp.status
        first_final = status >= 200 and not txn.status
        if first_final:
            txn.again = again
        for action in self.txns.send_response(txn, status, resp.to_bytes(), now):
            out.append((action[1], action[2]))
        if ctx is not None:
            if ctx.call is not None:
                self.calls.progress(ctx.call, status, resp.body, now)
            if first_final:
                ctx.request = None
                ctx.stage_due = None
        if first_final:
            self._count_answer(status)

    def _count_answer(self, status):
        if status >= 500:
            self.counters["answered_5xx"] += 1
        elif status >= 400:
            self.counters["answered_4xx"] += 1

    def relay(self, ctx, resp, now, out):
        """Send a downstream response upstream on ctx's server transaction: our Via off.
        The final answer to a BYE (no body, the dialog's To tag) is rebuilt for a
        retransmitted BYE rather than kept."""
        resp.pop_via()
        server = ctx.server
        again = None
        if server.method == "BYE" and not resp.body and server.request is not None and \
                to_tag(server.request) is not None:
            again = ANSWER
        self._send(server, resp, now, out, ctx, again)

    def _stateless_relay(self, resp, out):
        """A 2xx no branch waits for (retransmitted, §16.7 step 5): by its next Via."""
        resp.pop_via()
        via = resp.top_via()
        dest = None if via is None else response_address(via)
        if dest is None:
            self.counters["dropped"] += 1
            return
        out.append((resp.to_bytes(), dest))

    # requests ----------------------------------------------------------------
    def request(self, txn, req, now, out):
        """Route and forward a new request that is not for the registrar or for us."""
        method = req.method
        tag = to_tag(req)
        in_dialog = tag is not None
        caller = address_user(req.get("from"))
        decision = self.router.route(req, now, caller)
        ctx = Context(txn, req)
        txn.context = ctx
        initial_invite = method == "INVITE" and not in_dialog
        if decision.status:
            if initial_invite:
                self._start_call(ctx, req, decision, caller, now)
            self.answer(out, req, decision.status, decision.reason, decision.headers, txn,
                        now=now)
            return
        if initial_invite:
            if self.calls.full():
                self.answer(out, req, 503, "Service Unavailable", [("Retry-After", "30")], txn,
                            now=now)
                return
            self._start_call(ctx, req, decision, caller, now)
        elif in_dialog:
            self.calls.in_dialog(req.get("call-id"), method, req.body, now, req)
        ctx.record = method in DIALOG_METHODS and not in_dialog
        ctx.hops = req.max_forwards()
        if ctx.hops <= 0:
            self.answer(out, req, 483, "Too Many Hops", (), txn, now=now)
            return
        ctx.prefix = "z9hG4bK" + self.loop_hash(req, tag)
        if self._looped(req, ctx.prefix):
            self.answer(out, req, 482, "Loop Detected", (), txn, now=now)
            return
        self._stage(ctx, decision, now, out)

    def _start_call(self, ctx, req, decision, caller, now):
        callee = decision.callee or address_user(req.get("to"))
        if not callee:
            try:
                callee = URI(req.uri).user
            except ParseError:
                callee = ""
        ctx.call = self.calls.start(req.get("call-id"), caller, callee, req.body, now)
        legs = self.calls.legs  # endcall.py, while the dashboard runs
        if legs is not None and ctx.call is not None and ctx.call.leg_a is None:
            legs.caller_leg(ctx.call, req, ctx.server.source)

    def _stage(self, ctx, decision, now, out):
        """Fork ctx's request to decision's targets as the next stage (§16.6)."""
        ctx.stage += 1
        ctx.plan = decision.plan
        ctx.branches = ctx.pending()
        ctx.best = None  # the caller gets the best answer of the last stage
        ctx.best_status = 0
        req = ctx.request
        here = self.here
        method = req.method
        timer_c = self.config.timer_c * 1000 if method == "INVITE" else 0
        started = 0
        for target in decision.targets:
            fwd = req.copy()
            fwd.uri = target.uri
            fwd.set("Max-Forwards", str(ctx.hops - 1))
            if ctx.record:
                fwd.add("Record-Route", here.record_route, first=True)
            for name, value in target.headers:
                fwd.add(name, value)
            branch = ctx.prefix + "." + self.new_id()
            fwd.push_via("SIP/2.0/UDP %s;branch=%s" % (here.sent_by, branch))
            data = fwd.to_bytes()
            if len(data) > self.config.max_message_size:
                # we have no TCP (§18.1.1)
                self.answer(out, req, 513, "Message Too Large", (), ctx.server, now=now)
                return
            ct = ClientTransaction(branch + "|" + method, method, fwd, data, target.dest, ctx,
                                   now, timer_c)
            ct.stage = ctx.stage
            if not self.txns.add(ct):
                break
            ctx.branches.append(ct)
            started += 1
            out.append((data, target.dest))
        if not started:
            self.answer(out, req, 503, "Service Unavailable", [("Retry-After", "5")],
                        ctx.server, now=now)
        elif decision.timeout:
            ctx.stage_due = now + decision.timeout
            if ctx not in self.staged:
                self.staged.append(ctx)

    def loop_hash(self, req, tag):
        """Hash of what a loop would repeat (§16.6 step 8): Request-URI, From and To tags,
        Call-ID, CSeq number, and the Route set (a spiral through us changes it). tag: the
        request's To tag (None outside a dialog)."""
        return fnv("%s|%s|%s|%s|%s|%s" % (
            req.uri, to_tag(req, "from"), tag,
            req.get("call-id"), req.get("cseq").split()[0], ",".join(req.values("route"))))

    def _looped(self, req, prefix):
        sent_by = self.here.sent_by
        for value in req.values("via"):
            if sent_by in value and ("branch=" + prefix) in value:
                return True
        return False

    def ack(self, req, via, key, now, out):
        """ACK: absorbed by the INVITE transaction it ends, otherwise relayed statelessly."""
        server = self.txns.get(key)
        if server is not None and server.kind == INVITE_SERVER and server.status >= 300:
            self.txns.handle(server, ACK, now)
            return
        if server is None:
            kept = self.txns.finished(key)
            if kept is not None and kept[1] >= 300:
                return  # the ACK of a non-2xx again (Confirmed): absorbed
        decision = self.router.route(req, now, address_user(req.get("from")))
        if decision.status or not decision.targets:
            self.counters["dropped"] += 1
            return
        hops = req.max_forwards()
        if hops <= 0:
            self.counters["dropped"] += 1
            return
        self.calls.in_dialog(req.get("call-id"), "ACK", b"", now)
        target = decision.targets[0]
        req.uri = target.uri
        req.set("Max-Forwards", str(hops - 1))
        req.push_via("SIP/2.0/UDP %s;branch=z9hG4bK%s.a" % (self.here.sent_by,
                                                           fnv(via.branch() or key)))
        out.append((req.to_bytes(), target.dest))

    def cancel(self, req, key, reply_to, now, out):
        """CANCEL: 200 to it, CANCEL to every branch still pending (§16.10)."""
        server = self.txns.get(key)
        if server is None and self.txns.finished(key) is not None:
            self.answer(out, req, 200, "OK", dest=reply_to)  # answered already: no effect
            return
        if server is None or server.kind != INVITE_SERVER:
            self.answer(out, req, 481, "Call/Transaction Does Not Exist", dest=reply_to)
            return
        self.answer(out, req, 200, "OK", dest=reply_to)
        ctx = server.context
        if server.status or ctx is None or ctx.cancelled:
            return
        ctx.cancelled = True
        ctx.stage_due = None
        pending = ctx.pending()
        if not pending:
            self.answer(out, None, 487, "Request Terminated", (), server, now=now)
            return
        for ct in pending:
            self.cancel_branch(ct, now, out)

    def cancel_branch(self, ct, now, out):
        """Cancel one branch (INVITE only, §9.1): at once if it has had a provisional
        response, else as soon as one arrives."""
        self._run(ct, ct.context, self.txns.handle(ct, CANCEL, now), None, now, out)

    def _send_cancel(self, ct, now, out):
        req = ct.request
        if req is None:
            return
        data = hop_request(req, "CANCEL", req.get("to"))
        key = sibling_key(ct.key, "CANCEL")
        if self.txns.get(key) is None:
            self.txns.add(ClientTransaction(key, "CANCEL", None, data, ct.dest, None, now))
        out.append((data, ct.dest))

    # responses ---------------------------------------------------------------
    def response(self, resp, now, out):
        """A response from downstream: match its client transaction (§17.1.3)."""
        via = resp.top_via()
        if via is None:
            self.counters["dropped"] += 1
            return
        try:
            method = resp.cseq()[1]
        except ParseError:
            self.counters["dropped"] += 1
            return
        if "%s:%s" % (via.host, via.port) != self.here.sent_by:
            self.counters["dropped"] += 1
            return
        key = via.branch() + "|" + method
        ct = self.txns.get(key)
        if ct is None or ct.kind not in CLIENT_KINDS:
            if ct is None and self.txns.finished(key) is not None:
                return  # a finished branch's response again (Timer K): absorbed
            if method == "INVITE" and 200 <= resp.status < 300:
                self._stateless_relay(resp, out)  # a retransmitted 2xx (§16.7 step 5)
            else:
                self.counters["dropped"] += 1
            return
        ctx = ct.context  # taken first: a transaction forgotten at once drops its links
        actions = self.txns.handle(ct, event_for(resp.status), now, resp.status, resp)
        self._run(ct, ctx, actions, resp, now, out)

    def _run(self, ct, ctx, actions, resp, now, out):
        """Carry out what client transaction ct's state machine asked for."""
        for action in actions:
            what = action[0]
            if what == SEND:
                out.append((action[1], action[2]))
            elif what == SEND_CANCEL:
                self._send_cancel(ct, now, out)
            elif what == STRAY_2XX:
                self._stateless_relay(resp, out)
            elif ctx is None:
                continue  # a CANCEL's own transaction: nobody waits for its answer
            elif what == DELIVER:
                if resp.status < 200:
                    if resp.status > 100 and not ctx.server.status:
                        self.relay(ctx, resp, now, out)
                else:
                    self.branch_done(ct, ctx, resp, now, out)
            elif what == TIMEOUT:
                self.branch_done(ct, ctx, None, now, out)

    def branch_done(self, ct, ctx, resp, now, out):
        """A branch's final response (resp None: it timed out): the response context."""
        ct.context = None  # the branch is over: later 2xx are relayed statelessly
        server = ctx.server
        status = ct.status
        if 200 <= status < 300 and (ct.method == "INVITE" or not server.status):
            # every 2xx to an INVITE goes upstream (§16.7 step 5); other requests get one answer
            if ctx.call is not None and ctx.call.leg_a is not None and ct.method == "INVITE":
                self.calls.legs.callee_leg(ctx.call, resp, ct.dest, self.here.record_route)
            self.relay(ctx, resp, now, out)
            ctx.stage_due = None
            for other in ctx.pending():
                self.cancel_branch(other, now, out)
            return
        if server.status:
            return  # already answered
        if ct.stage != ctx.stage:
            return  # a branch of an earlier stage, cancelled: its answer is not the caller's
        if status >= 600:
            for other in ctx.pending():
                self.cancel_branch(other, now, out)
        if resp is not None and (ctx.best is None or class_rank(status) < class_rank(
                ctx.best_status)):
            ctx.best = resp
            ctx.best_status = status
        elif resp is None and ctx.best is None and not ctx.best_status:
            ctx.best_status = 408
        if ctx.pending(ctx.stage):
            return
        self._stage_over(ctx, now, out)

    def _stage_over(self, ctx, now, out):
        """The current stage ended without a 2xx: the router's next stage, or the best
        response upstream (a 503 becomes 500, §16.7 step 6; nothing at all: 408)."""
        ctx.stage_due = None
        if not ctx.cancelled and ctx.best_status < 600:
            decision = self.router.next(ctx.plan, ctx.best_status or 408, now)
            if decision is not None:
                if decision.status:
                    self.answer(out, ctx.request, decision.status, decision.reason,
                                decision.headers, ctx.server, now=now)
                else:
                    self._stage(ctx, decision, now, out)
                return
        best = ctx.best
        if best is None:
            self.answer(out, ctx.request, 408, "Request Timeout", (), ctx.server, now=now)
            return
        if best.status == 503:
            best.status, best.reason = 500, "Server Internal Error"  # §16.7 step 6
        self.relay(ctx, best, now, out)

    # timers ------------------------------------------------------------------
    def tick(self, now, out):
        """Run every transaction timer and stage timeout that is due."""
        for txn in self.txns.due(now):
            if txn.due is None or txn.due > now:
                continue  # an earlier timer of this tick already moved it on
            if txn.kind in CLIENT_KINDS:
                ctx = txn.context
                actions = self.txns.fire(txn, now)
                for action in actions:
                    if action[0] == SEND:
                        self.counters["retransmitted"] += 1
                self._run(txn, ctx, actions, None, now, out)
            else:
                for action in self.txns.fire(txn, now):
                    out.append((action[1], action[2]))
        if self.staged:
            fired = []
            waiting = []
            for ctx in self.staged:
                if ctx.stage_due is None or ctx.server.status:
                    continue
                if ctx.stage_due <= now:
                    fired.append(ctx)
                else:
                    waiting.append(ctx)
            self.staged = waiting
            fired.sort(key=lambda c: (c.stage_due, c.server.seq))
            for ctx in fired:
                self._stage_timeout(ctx, now, out)

    def _stage_timeout(self, ctx, now, out):
        """A stage's timeout: CANCEL its pending branches, on to the next stage."""
        if ctx.server.status or ctx.cancelled:
            return
        for ct in ctx.pending(ctx.stage):
            self.cancel_branch(ct, now, out)
        if not ctx.best_status:
            ctx.best_status = 408
        self._stage_over(ctx, now, out)

    def shift_times(self, ms):
        """The board clock started a new epoch: the stage timeouts move back by ms."""
        for ctx in self.staged:
            if ctx.stage_due is not None:
                ctx.stage_due -= ms

    def next_due(self):
        """ms of the earliest stage timeout, or None."""
        due = None
        for ctx in self.staged:
            if ctx.stage_due is not None and (due is None or ctx.stage_due < due):
                due = ctx.stage_due
        return due


def response_address(via):
    """Where a response to this Via goes (§18.2.2, RFC 3581 §4), or None when that needs a
    name lookup or IPv6 (the Via's received/rport were validated when it was parsed)."""
    host = via.param("received") or via.host
    if not is_ipv4(host):
        return None
    rport = via.param("rport")
    return (host, int(rport) if rport else (via.port or 5060))


def reply_address(via, source):
    """Where our responses to a request go: its source IP, the port by RFC 3581."""
    if via.param("rport") is not None:
        return source
    return (source[0], via.port or 5060)
