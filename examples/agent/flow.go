package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// errUnreachable means the sidecar could not be reached at all; the run stops.
var errUnreachable = errors.New("sidecar unreachable")

// The parts of Kanbot's JSON the agent reads (see the backend's API).
type (
	user struct {
		ID       string `json:"id"`
		Email    string `json:"email"`
		Username string `json:"username"`
	}
	space struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		OwnerEmail string `json:"owner_email"`
	}
	column struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		Category string `json:"category"`
		Position int    `json:"position"`
	}
	task struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	}
	comment struct {
		ID        string `json:"id"`
		Content   string `json:"content"`
		ActorName string `json:"actor_name"`
	}
	card struct {
		ID                   string    `json:"id"`
		ColumnID             string    `json:"column_id"`
		Name                 string    `json:"name"`
		TaskCounter          int       `json:"task_counter"`
		TaskCompletedCounter int       `json:"task_completed_counter"`
		Tasks                []task    `json:"tasks"`
		Comments             []comment `json:"comments"`
	}
)

// plan is what the agent does for one profile: three cards (the first two in
// Inbox, the third in Review), then the second card moves to In Progress and
// gets a checklist task and a comment.
type plan struct {
	cards   [3]string
	task    string
	comment string
}

// plans gives the demo's people recognisable work; other names get generic.
var plans = map[string]plan{
	"alice": {
		cards:   [3]string{"Collect launch feedback", "Draft the press release", "Pricing page copy"},
		task:    "Get legal sign-off on the press release",
		comment: "Started a first draft; waiting for the numbers from finance.",
	},
	"bob": {
		cards:   [3]string{"Inventory the cron jobs", "Migrate the billing database", "Outage post-mortem"},
		task:    "Rehearse the billing cut-over on staging",
		comment: "Migration plan is written; the dry run is booked for Thursday.",
	},
	"charlie": {
		cards:   [3]string{"Screen backend candidates", "Schedule onsite interviews", "Offer letter for Dana"},
		task:    "Book rooms for the onsite interviews",
		comment: "Three candidates confirmed; rooms still to book.",
	},
}

func planFor(profile string) plan {
	if p, ok := plans[profile]; ok {
		return p
	}
	return plan{
		cards:   [3]string{"Sort the inbox", "Prepare the weekly update", "Review open requests"},
		task:    "Collect numbers for the weekly update",
		comment: "Working on it; first version due tomorrow.",
	}
}

// tally counts what was done for one profile.
type tally struct {
	spaces, cards, moved, tasks, comments, open, failures int
}

// workspace is what the agent created for one profile in this run.
type workspace struct {
	user    user
	space   space
	columns map[string]column // by category: inbox, in_progress, review, archive
	cards   []card
}

// agent runs the scenario and keeps score. Not safe for concurrent use.
type agent struct {
	c        *client
	out      io.Writer
	profiles []string
	runID    string
	stats    map[string]*tally
	requests map[string]int
	work     map[string]*workspace
	met      int
	failed   int
	width    int // profile column width
}

func newAgent(c *client, out io.Writer, profiles []string) *agent {
	a := &agent{
		c: c, out: out, profiles: profiles,
		runID:    time.Now().UTC().Format("15:04:05"),
		stats:    map[string]*tally{},
		requests: map[string]int{},
		work:     map[string]*workspace{},
		width:    len("untagged"),
	}
	for _, p := range profiles {
		a.stats[p] = &tally{}
		a.width = max(a.width, len(p))
	}
	return a
}

// say prints one line under a profile (or "" for none).
func (a *agent) say(who, format string, args ...any) {
	fmt.Fprintf(a.out, "  %-*s  %s\n", a.width, who, fmt.Sprintf(format, args...))
}

// expect records one expectation; a failure is printed with its reason.
// It returns ok so callers can stop a dependent step.
func (a *agent) expect(who string, ok bool, format string, args ...any) bool {
	if ok {
		a.met++
		return true
	}
	a.failed++
	if t := a.stats[who]; t != nil {
		t.failures++
	}
	a.say(who, "FAIL "+format, args...)
	return false
}

// call is client.call plus request counting and failure bookkeeping. A
// transport error ends the run (errUnreachable); an unexpected answer is a
// failed expectation (ok false, err nil).
func (a *agent) call(ctx context.Context, profile, method, path string, body any, want int, out any) (bool, error) {
	a.requests[profile]++
	_, err := a.c.call(ctx, profile, method, path, body, want, out)
	if err == nil {
		a.met++
		return true, nil
	}
	if errors.Is(err, errUnexpected) || errors.Is(err, errDecode) {
		a.expect(profile, false, "%v", err)
		return false, nil
	}
	return false, fmt.Errorf("%w: %v", errUnreachable, err)
}

func (a *agent) run(ctx context.Context) error {
	fmt.Fprintf(a.out, "== work: one space per profile (run %s), cards, a move, a task, a comment\n", a.runID)
	for _, p := range a.profiles {
		if err := a.workFor(ctx, p); err != nil {
			return err
		}
	}
	fmt.Fprintln(a.out, "== morning briefing: open cards per profile")
	for _, p := range a.profiles {
		if err := a.briefing(ctx, p); err != nil {
			return err
		}
	}
	fmt.Fprintln(a.out, "== cross-profile attempt: one profile reaching for another's space")
	if err := a.crossProfile(ctx); err != nil {
		return err
	}
	fmt.Fprintln(a.out, "== requests the sidecar must refuse")
	if err := a.refusals(ctx); err != nil {
		return err
	}
	a.summary()
	return nil
}

// workFor creates one profile's space and cards and works on them.
func (a *agent) workFor(ctx context.Context, p string) error {
	w := &workspace{columns: map[string]column{}}
	a.work[p] = w
	t := a.stats[p]
	pl := planFor(p)

	ok, err := a.call(ctx, p, "GET", "/api/v1/users/me", nil, http.StatusOK, &w.user)
	if err != nil || !ok {
		return err
	}
	a.say(p, "acting as %s (user %s)", w.user.Email, short(w.user.ID))

	name := fmt.Sprintf("%s's board (run %s)", p, a.runID)
	ok, err = a.call(ctx, p, "POST", "/api/v1/spaces", map[string]any{"name": name, "type": "personal"}, http.StatusCreated, &w.space)
	if err != nil || !ok {
		return err
	}
	t.spaces++

	var cols []column
	ok, err = a.call(ctx, p, "GET", "/api/v1/columns?space_id="+url.QueryEscape(w.space.ID), nil, http.StatusOK, &cols)
	if err != nil || !ok {
		return err
	}
	var colNames []string
	for _, c := range cols {
		w.columns[c.Category] = c
		colNames = append(colNames, c.Name)
	}
	a.say(p, "space %q (%s) with columns %s", w.space.Name, short(w.space.ID), strings.Join(colNames, ", "))
	for _, cat := range []string{"inbox", "in_progress", "review"} {
		if !a.expect(p, w.columns[cat].ID != "", "the new space has no %q column", cat) {
			return nil
		}
	}

	for i, title := range pl.cards {
		col := w.columns["inbox"]
		if i == 2 {
			col = w.columns["review"]
		}
		var c card
		ok, err = a.call(ctx, p, "POST", "/api/v1/cards", map[string]any{"column_id": col.ID, "name": title}, http.StatusCreated, &c)
		if err != nil {
			return err
		}
		if ok {
			t.cards++
			w.cards = append(w.cards, c)
			a.say(p, "card %q → %s", title, col.Name)
		}
	}
	if len(w.cards) < 2 {
		return nil
	}

	moved, to := w.cards[1], w.columns["in_progress"]
	ok, err = a.call(ctx, p, "POST", "/api/v1/cards/"+moved.ID+"/move", map[string]any{"column_id": to.ID}, http.StatusOK, &moved)
	if err != nil {
		return err
	}
	if ok {
		t.moved++
		w.cards[1] = moved
		a.say(p, "moved %q → %s", moved.Name, to.Name)
	}

	ok, err = a.call(ctx, p, "POST", "/api/v1/cards/"+moved.ID+"/tasks", map[string]any{"text": pl.task}, http.StatusCreated, nil)
	if err != nil {
		return err
	}
	if ok {
		t.tasks++
		a.say(p, "task %q on %q", pl.task, moved.Name)
	}
	ok, err = a.call(ctx, p, "POST", "/api/v1/cards/"+moved.ID+"/comments", map[string]any{"content": pl.comment}, http.StatusCreated, nil)
	if err != nil {
		return err
	}
	if ok {
		t.comments++
		a.say(p, "comment on %q: %q", moved.Name, pl.comment)
	}

	// Read the card back: the backend, not the agent, is the record.
	var got card
	ok, err = a.call(ctx, p, "GET", "/api/v1/cards/"+moved.ID, nil, http.StatusOK, &got)
	if err != nil || !ok {
		return err
	}
	a.expect(p, got.ColumnID == to.ID, "card %q is in column %s after the move, want %s", got.Name, short(got.ColumnID), short(to.ID))
	a.expect(p, len(got.Tasks) == 1 && got.Tasks[0].Text == pl.task, "card %q has tasks %v, want one: %q", got.Name, got.Tasks, pl.task)
	a.expect(p, len(got.Comments) == 1 && got.Comments[0].Content == pl.comment, "card %q has %d comments, want one", got.Name, len(got.Comments))
	return nil
}

// briefing prints one line: the profile's open cards across its spaces.
func (a *agent) briefing(ctx context.Context, p string) error {
	var raw json.RawMessage
	ok, err := a.call(ctx, p, "GET", "/api/v1/spaces", nil, http.StatusOK, &raw)
	if err != nil || !ok {
		return err
	}
	spaces, err := decodeList[space](raw, "spaces")
	if !a.expect(p, err == nil, "decode the space list: %v", err) {
		return nil
	}
	var open []string
	ids := map[string]bool{}
	for _, s := range spaces {
		var cols []column
		ok, err := a.call(ctx, p, "GET", "/api/v1/columns?space_id="+url.QueryEscape(s.ID), nil, http.StatusOK, &cols)
		if err != nil || !ok {
			return err
		}
		colByID := map[string]column{}
		for _, c := range cols {
			colByID[c.ID] = c
		}
		raw = nil
		ok, err = a.call(ctx, p, "GET", "/api/v1/cards?space_id="+url.QueryEscape(s.ID), nil, http.StatusOK, &raw)
		if err != nil || !ok {
			return err
		}
		cards, err := decodeList[card](raw, "cards")
		if !a.expect(p, err == nil, "decode the card list: %v", err) {
			return nil
		}
		for _, c := range cards {
			col := colByID[c.ColumnID]
			if col.Category == "archive" {
				continue
			}
			ids[c.ID] = true
			line := fmt.Sprintf("%s [%s", c.Name, col.Name)
			if c.TaskCounter > 0 {
				line += fmt.Sprintf(", %d/%d tasks", c.TaskCompletedCounter, c.TaskCounter)
			}
			open = append(open, line+"]")
		}
	}
	a.stats[p].open = len(open)
	a.say(p, "%d open card%s in %d space%s: %s", len(open), plural(len(open)), len(spaces), plural(len(spaces)), strings.Join(open, "; "))
	for _, c := range a.work[p].cards {
		a.expect(p, ids[c.ID], "card %q created in this run is missing from the briefing", c.Name)
	}
	return nil
}

// crossProfile makes the first profile read, then write into, the second
// profile's space. The backend must refuse both with its own 403: the
// sidecar injected the first profile's key, and that user is no member.
func (a *agent) crossProfile(ctx context.Context) error {
	if len(a.profiles) < 2 {
		a.say("", "skipped: needs at least two profiles")
		return nil
	}
	from, to := a.profiles[0], a.profiles[1]
	target := a.work[to]
	if target == nil || target.space.ID == "" {
		a.expect(from, false, "no space of %s to reach for (its setup failed)", to)
		return nil
	}
	attempts := []struct {
		what, method, path string
		body               any
	}{
		{"read " + to + "'s space", "GET", "/api/v1/spaces/" + target.space.ID, nil},
		{"add a card to " + to + "'s Inbox", "POST", "/api/v1/cards", map[string]any{"column_id": target.columns["inbox"].ID, "name": "Injected by " + from}},
	}
	for _, at := range attempts {
		a.requests[from]++
		r, err := a.c.do(ctx, from, at.method, at.path, at.body)
		if err != nil {
			return fmt.Errorf("%w: %v", errUnreachable, err)
		}
		blocked := r.Status == http.StatusForbidden && r.SidecarError == ""
		verdict := "BLOCKED"
		if !blocked {
			verdict = "NOT BLOCKED"
		}
		a.say(from, "tries to %s (%s): %s — %s", at.what, short(target.space.ID), verdict, r.describe())
		a.expect(from, blocked, "%s as %s: want the backend's 403, got %s", at.what, from, r.describe())
	}
	return nil
}

// refusals sends requests the sidecar itself must refuse, before any key
// is chosen: one with no profile tag, one for a profile that does not exist.
func (a *agent) refusals(ctx context.Context) error {
	unknown := "mallory"
	for slices.Contains(a.profiles, unknown) {
		unknown += "x"
	}
	cases := []struct {
		who, profile, code string
		status             int
	}{
		{"untagged", "", "missing_profile", http.StatusBadRequest},
		{unknown, unknown, "unknown_profile", http.StatusForbidden},
	}
	for _, c := range cases {
		r, err := a.c.do(ctx, c.profile, "GET", "/api/v1/spaces", nil)
		if err != nil {
			return fmt.Errorf("%w: %v", errUnreachable, err)
		}
		ok := r.Status == c.status && r.SidecarError == c.code
		verdict := "REFUSED"
		if !ok {
			verdict = "NOT REFUSED"
		}
		what := "GET /api/v1/spaces without X-Kanbot-Profile"
		if c.profile != "" {
			what = fmt.Sprintf("GET /api/v1/spaces as %q", c.profile)
		}
		a.say(c.who, "%s: %s — %s", what, verdict, r.describe())
		a.expect(c.who, ok, "%s: want %d %s from the sidecar, got %s", what, c.status, c.code, r.describe())
	}
	return nil
}

func (a *agent) summary() {
	fmt.Fprintln(a.out, "== summary")
	fmt.Fprintf(a.out, "  %-*s  %8s  %6s  %5s  %5s  %5s  %8s  %4s  %8s\n", a.width, "profile",
		"requests", "spaces", "cards", "moved", "tasks", "comments", "open", "failures")
	for _, p := range a.profiles {
		t := a.stats[p]
		fmt.Fprintf(a.out, "  %-*s  %8d  %6d  %5d  %5d  %5d  %8d  %4d  %8d\n", a.width, p,
			a.requests[p], t.spaces, t.cards, t.moved, t.tasks, t.comments, t.open, t.failures)
	}
	if a.failed == 0 {
		fmt.Fprintf(a.out, "result: OK, all %d expectations met\n", a.met)
		return
	}
	fmt.Fprintf(a.out, "result: FAILED, %d of %d expectations not met\n", a.failed, a.met+a.failed)
}

// decodeList accepts a bare JSON array or an object holding it under key
// (Kanbot returns bare arrays; some deployments wrap them).
func decodeList[T any](raw json.RawMessage, key string) ([]T, error) {
	var list []T
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var wrapped map[string]json.RawMessage
	if err := json.Unmarshal(raw, &wrapped); err != nil {
		return nil, fmt.Errorf("want a JSON array or an object with %q", key)
	}
	inner, ok := wrapped[key]
	if !ok {
		return nil, fmt.Errorf("want a JSON array or an object with %q", key)
	}
	if err := json.Unmarshal(inner, &list); err != nil {
		return nil, fmt.Errorf("%q: %v", key, err)
	}
	return list, nil
}

// short abbreviates an id for display.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
