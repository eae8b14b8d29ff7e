package acp

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	sdk "github.com/coder/acp-go-sdk"
	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/session"
)

// agentSide is agentd as the SDK's Agent: the SDK decodes each request,
// calls the method in a goroutine of its own and writes what it returns.
// The params were admitted first (admit.go). The SDK's contexts are not
// used, except Prompt's: they end with the SDK's input, and a
// $/cancel_request ends one, which for the methods other than
// session/prompt must not turn a quick answer into an error; the
// connection's context (conn.ctx) ends with the connection instead.
//
// Every error returned is an *Error: the SDK would put any other error's
// text into the response (toReqErr), and details belong in the log.
type agentSide struct{ c *conn }

var (
	_ sdk.Agent       = agentSide{}
	_ sdk.AgentLoader = agentSide{}
)

const configModel = "model"

// catch turns a handler's panic into an internal error: the SDK runs
// handlers without a recover, so a panic would end the process.
func (a agentSide) catch(method string, err *error) {
	if p := recover(); p != nil {
		a.c.log.Error("acp handler panicked", zap.String("method", method), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
		*err = errInternal()
	}
}

// Initialize states what agentd supports. It echoes a version agentd
// speaks, otherwise it answers its latest: the client decides whether to go
// on. admit marked the connection initialized.
func (a agentSide) Initialize(_ context.Context, _ sdk.InitializeRequest) (_ sdk.InitializeResponse, err error) {
	defer a.catch("initialize", &err)
	return sdk.InitializeResponse{
		ProtocolVersion: ProtocolVersion,
		AgentCapabilities: sdk.AgentCapabilities{
			LoadSession: true,
			// No image, audio or embedded context, no MCP servers of the
			// client's: the SDK's types leave the false values out.
			SessionCapabilities: sdk.SessionCapabilities{
				List:   &sdk.SessionListCapabilities{},
				Resume: &sdk.SessionResumeCapabilities{},
				Close:  &sdk.SessionCloseCapabilities{},
			},
		},
		AgentInfo:   &sdk.Implementation{Name: "agentd", Title: sdk.Ptr("agentd"), Version: a.c.s.cfg.Version},
		AuthMethods: []sdk.AuthMethod{},
	}, nil
}

// Authenticate is not offered: agentd advertises no auth methods (the
// transport authenticates).
func (a agentSide) Authenticate(context.Context, sdk.AuthenticateRequest) (sdk.AuthenticateResponse, error) {
	return sdk.AuthenticateResponse{}, sdk.NewMethodNotFound(sdk.AgentMethodAuthenticate)
}

// SetSessionMode is not offered: agentd has no modes (the permission rules
// are the operator's, per canary cohort).
func (a agentSide) SetSessionMode(context.Context, sdk.SetSessionModeRequest) (sdk.SetSessionModeResponse, error) {
	return sdk.SetSessionModeResponse{}, sdk.NewMethodNotFound(sdk.AgentMethodSessionSetMode)
}

// NewSession creates an agentd session for the connection's user.
func (a agentSide) NewSession(_ context.Context, req sdk.NewSessionRequest) (_ sdk.NewSessionResponse, err error) {
	defer a.catch("session/new", &err)
	c := a.c
	c.ignoreMCPServers("session/new", req.McpServers)
	sess, perr := c.s.pool.Create(c.ctx, c.peer.Tenant, c.peer.User, "")
	if perr != nil {
		return sdk.NewSessionResponse{}, c.mapError(perr, "")
	}
	c.log.Info("acp session created", zap.String("session_id", string(sess.ID)), zap.String("model", sess.Model))
	return sdk.NewSessionResponse{SessionId: sdk.SessionId(sess.ID), ConfigOptions: c.s.configOptions(sess.Model)}, nil
}

// LoadSession replays a stored session's history as session/update
// notifications, then answers: the SDK writes the response after the
// updates, which are written as they are sent.
func (a agentSide) LoadSession(_ context.Context, req sdk.LoadSessionRequest) (_ sdk.LoadSessionResponse, err error) {
	defer a.catch("session/load", &err)
	c, sid := a.c, session.ID(req.SessionId)
	if up, rerr := c.route(sid); rerr != nil {
		return sdk.LoadSessionResponse{}, rerr
	} else if up != nil {
		// The owner replays; each update is on the client's wire before
		// LoadSession returns (relay.go).
		resp, err := up.cs.LoadSession(up.ctx, req)
		if err != nil {
			return sdk.LoadSessionResponse{}, up.mapErr(err, sid)
		}
		c.log.Info("acp session loaded through its owner", zap.String("session_id", string(sid)), zap.String("owner", up.node))
		return resp, nil
	}
	c.ignoreMCPServers("session/load", req.McpServers)
	sess, perr := c.s.pool.Get(c.ctx, c.peer.Tenant, sid)
	if perr != nil {
		return sdk.LoadSessionResponse{}, c.mapError(perr, sid)
	}
	if sess.InFlight != nil {
		return sdk.LoadSessionResponse{}, errBusy(sid)
	}
	for _, u := range replay(sess.Messages) {
		if err := c.sdk.SessionUpdate(context.WithoutCancel(c.ctx), sdk.SessionNotification{SessionId: req.SessionId, Update: u}); err != nil {
			return sdk.LoadSessionResponse{}, &Error{Code: CodeInternalError, Message: "Internal error: the replay could not be sent"}
		}
	}
	c.log.Info("acp session loaded", zap.String("session_id", string(sid)), zap.Int("messages", len(sess.Messages)))
	return sdk.LoadSessionResponse{ConfigOptions: c.s.configOptions(sess.Model)}, nil
}

// ResumeSession re-attaches to a stored session without a replay. A
// connection keeps nothing per session besides its running prompts, so it
// only checks that the session is the tenant's and answers with its
// options; it does so also while a turn runs elsewhere (session/load
// refuses that because its replay would miss the running turn).
func (a agentSide) ResumeSession(_ context.Context, req sdk.ResumeSessionRequest) (_ sdk.ResumeSessionResponse, err error) {
	defer a.catch("session/resume", &err)
	c, sid := a.c, session.ID(req.SessionId)
	if up, rerr := c.route(sid); rerr != nil {
		return sdk.ResumeSessionResponse{}, rerr
	} else if up != nil {
		resp, err := up.cs.ResumeSession(up.ctx, req)
		if err != nil {
			return sdk.ResumeSessionResponse{}, up.mapErr(err, sid)
		}
		c.log.Info("acp session resumed through its owner", zap.String("session_id", string(sid)), zap.String("owner", up.node))
		return resp, nil
	}
	c.ignoreMCPServers("session/resume", req.McpServers)
	sess, perr := c.s.pool.Get(c.ctx, c.peer.Tenant, sid)
	if perr != nil {
		return sdk.ResumeSessionResponse{}, c.mapError(perr, sid)
	}
	c.log.Info("acp session resumed", zap.String("session_id", string(sid)))
	return sdk.ResumeSessionResponse{ConfigOptions: c.s.configOptions(sess.Model)}, nil
}

// ListSessions pages the tenant's sessions, newest first (any user's, as
// in the HTTP API). The cursor is the id of the last session of the
// previous page. cwd does not filter: sessions are not tied to a client's
// directory; each one's cwd is its workspace on the agentd host, where its
// tools run.
func (a agentSide) ListSessions(_ context.Context, req sdk.ListSessionsRequest) (_ sdk.ListSessionsResponse, err error) {
	defer a.catch("session/list", &err)
	c := a.c
	q := session.ListQuery{Limit: c.s.cfg.ListPageSize}
	if req.Cursor != nil {
		q.Before = session.ID(*req.Cursor)
	}
	sums, next, perr := c.s.pool.List(c.ctx, c.peer.Tenant, q)
	if perr != nil {
		return sdk.ListSessionsResponse{}, c.mapError(perr, "")
	}
	resp := sdk.ListSessionsResponse{Sessions: make([]sdk.SessionInfo, 0, len(sums))}
	for _, s := range sums {
		info := sdk.SessionInfo{SessionId: sdk.SessionId(s.ID), Cwd: c.s.workspace(s.Tenant, s.ID), UpdatedAt: sdk.Ptr(s.UpdatedAt.UTC().Format(time.RFC3339))}
		if s.Title != "" {
			info.Title = sdk.Ptr(s.Title)
		}
		resp.Sessions = append(resp.Sessions, info)
	}
	if next != "" {
		resp.NextCursor = sdk.Ptr(string(next))
	}
	return resp, nil
}

// workspace is the absolute directory a session's tools run in.
func (s *Server) workspace(tenant string, id session.ID) string {
	dir := s.pool.Dir(tenant, id)
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// Prompt runs one turn and answers with its stop reason. admit registered
// the prompt and its text; the SDK's context ends on a $/cancel_request
// for it (or a session/cancel), which cancels the turn.
func (a agentSide) Prompt(ctx context.Context, req sdk.PromptRequest) (_ sdk.PromptResponse, err error) {
	defer a.catch("session/prompt", &err)
	c, sid := a.c, session.ID(req.SessionId)
	c.mu.Lock()
	pr := c.prompts[sid]
	c.mu.Unlock()
	if pr == nil { // admit registers every prompt it lets through
		c.log.Error("acp prompt was not admitted", zap.String("session_id", string(sid)))
		return sdk.PromptResponse{}, errInternal()
	}
	defer pr.end()
	stop := context.AfterFunc(ctx, func() { pr.cancelRequested(ReasonSessionCancel) })
	defer stop()
	if up, rerr := c.route(sid); rerr != nil {
		return sdk.PromptResponse{}, rerr
	} else if up != nil {
		return c.relayPrompt(up, pr, req)
	}
	if pr.loading != nil { // a pipelined prompt waits for the replay to reach the wire
		select {
		case <-pr.loading:
		case <-pr.ctx.Done():
		}
	}
	res, terr := c.s.pool.Turn(pr.ctx, c.peer.Tenant, sid, session.TurnInput{Content: pr.text, Emit: pr.emit})
	var ce *agent.CancelError
	switch {
	case terr != nil && errors.As(terr, &ce):
		return sdk.PromptResponse{StopReason: sdk.StopReasonCancelled}, nil
	case terr != nil:
		return sdk.PromptResponse{}, c.mapError(terr, sid)
	}
	reason := stopReason(res.Outcome, pr.cancelled.Load())
	if res.Outcome.Status == agent.StatusError && reason != sdk.StopReasonCancelled {
		return sdk.PromptResponse{}, &Error{Code: CodeInternalError, Message: "Internal error: the turn failed; see the agentd log", Data: map[string]string{"error": res.Outcome.Error}}
	}
	return sdk.PromptResponse{StopReason: reason}, nil
}

// stopReason maps a turn's outcome to ACP's stop reason, with Agentao's
// precedence: cancelled > max_turn_requests > max_tokens > end_turn.
// refusal is never sent.
func stopReason(o agent.Outcome, cancelRequested bool) sdk.StopReason {
	switch {
	case cancelRequested || o.Status == agent.StatusCancelled:
		return sdk.StopReasonCancelled
	case o.IncompleteReason == agent.IncompleteMaxIterations || o.IncompleteReason == agent.IncompleteDoomLoop:
		return sdk.StopReasonMaxTurnRequests
	case o.IncompleteReason == agent.IncompleteLengthTruncated:
		return sdk.StopReasonMaxTokens
	default:
		return sdk.StopReasonEndTurn
	}
}

// Cancel ends the session's running turn (reason acp-session-cancel),
// whoever started it; the prompt that runs it answers with stopReason
// cancelled. Cancelling an idle session does nothing. As a notification
// it is never answered; as a request its answer is null, or -32002 for an
// unknown session.
//
// For a session another replica owns, the session/cancel goes to the
// owner (before the reader goes on), and this connection's prompt of it
// is withdrawn there; as a request, the owner is asked whether the
// session exists (session/resume) when this connection has no prompt of
// it, for the same -32002.
func (a agentSide) Cancel(_ context.Context, n sdk.CancelNotification) (err error) {
	defer a.catch("session/cancel", &err)
	c, sid := a.c, session.ID(n.SessionId)
	pass, call := c.takeBarrier()
	defer pass()
	pr, up, perr := c.cancelSession(sid)
	pass()
	switch {
	case perr != nil:
		return perr
	case up != nil && call && pr == nil:
		if _, err := up.cs.ResumeSession(up.ctx, sdk.ResumeSessionRequest{SessionId: n.SessionId, Cwd: "/"}); err != nil {
			return up.mapErr(err, sid)
		}
	}
	return nil
}

// cancelSession cancels the session's turn and returns this connection's
// prompt of it, if any, and the upstream the session/cancel went to for a
// session another replica owns.
func (c *conn) cancelSession(sid session.ID) (*prompt, *upstream, *Error) {
	c.mu.Lock()
	pr := c.prompts[sid]
	c.mu.Unlock()
	if pr != nil {
		pr.cancelRequested(ReasonSessionCancel)
	}
	up, rerr := c.route(sid)
	switch {
	case rerr != nil && pr == nil:
		return nil, nil, rerr
	case rerr != nil:
		return pr, nil, nil
	case up != nil:
		// Written before Cancel returns: the owner reads it before what
		// the client sends next.
		if err := up.cs.Cancel(up.ctx, sdk.CancelNotification{SessionId: sdk.SessionId(sid)}); err != nil && pr == nil {
			return nil, nil, up.mapErr(err, sid)
		}
		return pr, up, nil
	}
	if _, err := c.s.pool.Cancel(c.ctx, c.peer.Tenant, sid, ReasonSessionCancel); err != nil && pr == nil {
		return nil, nil, c.mapError(err, sid)
	}
	return pr, nil, nil
}

// CloseSession ends what the connection has of a session: as ACP says,
// it cancels the session's running turn as session/cancel does (whoever
// started it), then it waits until this connection's prompt of the
// session and its session/load, if any, are answered, so nothing of the
// session follows the close's response. The session itself stays stored:
// session/load, session/resume or a prompt take it up again. An unknown
// session is -32002 (which the TypeScript SDK takes for success).
func (a agentSide) CloseSession(_ context.Context, req sdk.CloseSessionRequest) (_ sdk.CloseSessionResponse, err error) {
	defer a.catch("session/close", &err)
	c, sid := a.c, session.ID(req.SessionId)
	pass, _ := c.takeBarrier()
	defer pass()
	switch up, rerr := c.route(sid); {
	case rerr != nil:
		c.mu.Lock()
		pr := c.prompts[sid]
		c.mu.Unlock()
		if pr != nil {
			pr.cancelRequested(ReasonSessionCancel)
		}
		return sdk.CloseSessionResponse{}, rerr
	case up != nil:
		return c.relayClose(up, req, pass)
	}
	pr, _, perr := c.cancelSession(sid)
	c.mu.Lock()
	loading := c.loading[sid]
	c.mu.Unlock()
	pass()
	if perr != nil {
		return sdk.CloseSessionResponse{}, perr
	}
	for _, ch := range []<-chan struct{}{answered(pr), loading} {
		if ch != nil {
			select {
			case <-ch:
			case <-c.done:
			}
		}
	}
	c.log.Info("acp session closed", zap.String("session_id", string(sid)))
	return sdk.CloseSessionResponse{}, nil
}

func answered(pr *prompt) <-chan struct{} {
	if pr == nil {
		return nil
	}
	return pr.answered
}

// SetSessionConfigOption changes the session's model (the only option).
func (a agentSide) SetSessionConfigOption(_ context.Context, req sdk.SetSessionConfigOptionRequest) (_ sdk.SetSessionConfigOptionResponse, err error) {
	defer a.catch("session/set_config_option", &err)
	c := a.c
	v := req.ValueId
	if v == nil { // admit lets through only a model id
		return sdk.SetSessionConfigOptionResponse{}, errInvalidParams("value must be a model id from the \"model\" option")
	}
	sid := session.ID(v.SessionId)
	if up, rerr := c.route(sid); rerr != nil {
		return sdk.SetSessionConfigOptionResponse{}, rerr
	} else if up != nil {
		resp, err := up.cs.SetSessionConfigOption(up.ctx, req)
		if err != nil {
			return sdk.SetSessionConfigOptionResponse{}, up.mapErr(err, sid)
		}
		c.log.Info("acp model switched through the session's owner", zap.String("session_id", string(sid)), zap.String("owner", up.node))
		return resp, nil
	}
	sess, perr := c.s.pool.SetModel(c.ctx, c.peer.Tenant, sid, strings.TrimSpace(string(v.Value)))
	if perr != nil {
		return sdk.SetSessionConfigOptionResponse{}, c.mapError(perr, sid)
	}
	c.log.Info("acp model switched", zap.String("session_id", string(sid)), zap.String("model", sess.Model))
	return sdk.SetSessionConfigOptionResponse{ConfigOptions: c.s.configOptions(sess.Model)}, nil
}

// configOptions is the complete option list: the model, from the catalog.
func (s *Server) configOptions(current string) []sdk.SessionConfigOption {
	var models []string
	if s.cfg.Models != nil {
		models = s.cfg.Models()
	}
	var opts sdk.SessionConfigSelectOptionsUngrouped
	seen := false
	for _, m := range models {
		opts = append(opts, sdk.SessionConfigSelectOption{Value: sdk.SessionConfigValueId(m), Name: m})
		seen = seen || m == current
	}
	if !seen { // a model no longer in the catalog is still the session's
		opts = append(sdk.SessionConfigSelectOptionsUngrouped{{Value: sdk.SessionConfigValueId(current), Name: current}}, opts...)
	}
	return []sdk.SessionConfigOption{{Select: &sdk.SessionConfigOptionSelect{
		Id: configModel, Name: "Model", Description: sdk.Ptr("The model this session's turns use; the history is kept when it changes."),
		Category: sdk.Ptr(sdk.SessionConfigOptionCategoryModel), Type: "select",
		CurrentValue: sdk.SessionConfigValueId(current), Options: sdk.SessionConfigSelectOptions{Ungrouped: &opts},
	}}}
}

// ignoreMCPServers logs the client's MCP servers, which agentd accepts
// (clients send the ones their user configured with every session) and
// ignores: tools are the operator's to configure, and a client must not
// start processes on a shared host.
func (c *conn) ignoreMCPServers(method string, servers []sdk.McpServer) {
	var names []string
	for _, s := range servers {
		switch {
		case s.Stdio != nil:
			names = append(names, s.Stdio.Name)
		case s.Http != nil:
			names = append(names, s.Http.Name)
		case s.Sse != nil:
			names = append(names, s.Sse.Name)
		case s.Acp != nil:
			names = append(names, s.Acp.Name)
		}
	}
	if len(names) > 0 {
		c.log.Warn("ignoring the client's MCP servers: agentd's tools are configured by the operator", zap.String("method", method), zap.Strings("mcp_servers", names))
	}
}

func errBusy(sid session.ID) *Error {
	return &Error{Code: CodeInvalidRequest, Message: "Invalid request: session " + string(sid) + " already has an active turn; cancel it (session/cancel) or wait until it ends",
		Data: map[string]string{"sessionId": string(sid)}}
}

// mapError turns a pool error into a JSON-RPC error; the one place where
// that happens. Internal failures are logged, not shown.
func (c *conn) mapError(err error, sid session.ID) *Error {
	var be *session.BudgetError
	switch {
	case errors.As(err, &be):
		return &Error{Code: CodeBudgetExceeded, Message: be.Error(), Data: map[string]any{
			"code": "budget_exceeded", "retryAfter": max(1, int64(math.Ceil(time.Until(be.Reset).Seconds()))), "resetsAt": be.Reset.UTC().Format(time.RFC3339)}}
	case errors.Is(err, session.ErrNotFound):
		return errSessionNotFound(string(sid))
	case errors.Is(err, session.ErrBusy):
		return errBusy(sid)
	case errors.Is(err, session.ErrInvalid):
		return errInvalidParams("%s", strings.TrimPrefix(err.Error(), session.ErrInvalid.Error()+": "))
	case errors.Is(err, session.ErrShuttingDown):
		return &Error{Code: CodeInternalError, Message: "Internal error: agentd is shutting down; reconnect and session/load later"}
	default:
		c.log.Error("acp request failed", zap.String("session_id", string(sid)), zap.Error(err))
		return errInternal()
	}
}
