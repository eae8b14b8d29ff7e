package skill

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits and hints from Agentao's skill guidance.
const (
	// MaxResources caps the files listed per resource directory, so a large
	// tree cannot flood the system prompt.
	MaxResources = 50
	// MaxNameLen is the longest skill name accepted.
	MaxNameLen = 64
	// SizeHint is the SKILL.md size above which Load warns: an active
	// skill's full text is in the system prompt every turn.
	SizeHint = 2048
)

// Skill is one loaded SKILL.md. It is immutable once loaded.
type Skill struct {
	Name        string // kebab-case, unique in its set (or in its tenant's forks)
	Description string // the trigger text; "" hides the skill from the catalog
	WhenToUse   string // optional
	Title       string // first "# " heading of the body, or Name
	Body        string // SKILL.md after the frontmatter
	Content     string // the whole SKILL.md (without a byte order mark)
	Path        string // SKILL.md, relative to the configuration root: "skills/default/debugging/SKILL.md"
	Dir         string // the skill directory, relative to the configuration root
	Tenant      string // the tenant of a fork; "" for a set's own skill
	// Resources are the skill's non-empty resource directories, in the
	// order references, assets, scripts.
	Resources []ResourceDir
	Hash      string // hex SHA-256 of SKILL.md
}

// ResourceDir lists the files of one resource directory of a skill.
type ResourceDir struct {
	Name    string   // "references", "assets" or "scripts"
	Files   []string // slash paths relative to the skill directory, at most MaxResources
	Omitted int      // files beyond the cap, not listed
}

// Lines returns the listed files, then, when some were omitted, a note
// "... (N more files under <dir>/ not shown)". The activation message and
// the system prompt show them one per line.
func (r ResourceDir) Lines() []string {
	lines := slices.Clone(r.Files)
	if r.Omitted > 0 {
		lines = append(lines, fmt.Sprintf("... (%d more files under %s/ not shown)", r.Omitted, r.Name))
	}
	return lines
}

// resourceDirs are Agentao's resource directories: references/ and
// assets/ are documentation (*.md only); scripts/ lists every file.
var resourceDirs = [...]struct{ name, ext string }{
	{"references", ".md"},
	{"assets", ".md"},
	{"scripts", ""},
}

var kebab = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// ValidName reports whether s is a valid skill name: kebab-case (lowercase
// letters, digits, single inner hyphens), at most MaxNameLen bytes.
func ValidName(s string) bool { return len(s) <= MaxNameLen && kebab.MatchString(s) }

// Frontmatter keys.
const (
	keyName        = "name"
	keyDescription = "description"
	keyWhenToUse   = "when-to-use"
)

// hints suggest the key that was probably meant.
var hints = map[string]string{
	"when_to_use": keyWhenToUse,
	"whentouse":   keyWhenToUse,
	"whenToUse":   keyWhenToUse,
	"desc":        keyDescription,
	"title":       "a \"# \" heading in the body",
}

type field struct {
	value string
	line  int // in the file
}

// parse parses the SKILL.md at p (relative to the configuration root). It
// records every problem in ps and returns nil when there was an error.
// nameLine is the line of the name key, or 1 when the name is the
// directory's.
func parse(p string, data []byte, ps *problems) (s *Skill, nameLine int) {
	if off := invalidUTF8(data); off >= 0 {
		ps.errorf(p, lineAt(data, off), "invalid UTF-8")
		return nil, 0
	}
	front, body, _, err := SplitFrontmatter(data)
	if err != nil {
		ps.errorf(p, 1, "%v", err)
		return nil, 0
	}
	fields, ok := parseFrontmatter(p, front, ps)
	if !ok {
		return nil, 0
	}
	sum := sha256.Sum256(data)
	dir := path.Dir(p)
	s = &Skill{
		Name:    path.Base(dir),
		Body:    string(body),
		Content: string(bytes.TrimPrefix(data, bom)),
		Path:    p,
		Dir:     dir,
		Hash:    hex.EncodeToString(sum[:]),
	}
	nameLine = 1
	if f, ok := fields[keyName]; ok {
		s.Name, nameLine = f.value, f.line
		switch {
		case s.Name == "":
			ps.errorf(p, f.line, "name is empty")
			return nil, 0
		case !ValidName(s.Name):
			ps.errorf(p, f.line, "name %q is not a valid skill name: use kebab-case (lowercase letters, digits, single hyphens), at most %d characters", s.Name, MaxNameLen)
			return nil, 0
		}
	} else if !ValidName(s.Name) {
		ps.errorf(p, 1, "directory name %q is not a valid skill name: rename the directory or set a kebab-case name: in the frontmatter", s.Name)
		return nil, 0
	}
	s.Description = fields[keyDescription].value
	s.WhenToUse = fields[keyWhenToUse].value
	if s.Description == "" {
		line := fields[keyDescription].line
		if line == 0 {
			line = 1
		}
		ps.warnf(p, line, "no description: the skill is hidden from the skills catalog")
	}
	if len(data) > SizeHint {
		ps.warnf(p, 0, "SKILL.md is %d bytes; keep it under %d: an active skill is in the system prompt every turn", len(data), SizeHint)
	}
	s.Title = title(string(body))
	if s.Title == "" {
		s.Title = s.Name
	}
	return s, nameLine
}

// parseFrontmatter decodes front (file lines 2...) into its known fields.
// ok is false when there was an error.
func parseFrontmatter(p string, front []byte, ps *problems) (fields map[string]field, ok bool) {
	const offset = 1 // YAML line 1 is file line 2
	fields = map[string]field{}
	if len(bytes.TrimSpace(front)) == 0 {
		return fields, true
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(front, &doc); err != nil {
		line, msg := yamlError(front, err)
		ps.errorf(p, line+offset, "invalid YAML frontmatter: %s", msg)
		return nil, false
	}
	if len(doc.Content) == 0 { // only comments
		return fields, true
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		ps.errorf(p, root.Line+offset, "frontmatter must be a YAML mapping of keys to values, not a %s", kindName(root.Kind))
		return nil, false
	}
	ok = true
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		line := k.Line + offset
		if k.Kind != yaml.ScalarNode {
			ps.errorf(p, line, "frontmatter keys must be strings, not a %s", kindName(k.Kind))
			ok = false
			continue
		}
		key := k.Value
		if first, dup := seen[key]; dup {
			ps.errorf(p, line, "duplicate key %q (first on line %d)", key, first)
			ok = false
			continue
		}
		seen[key] = line
		switch key {
		case keyName, keyDescription, keyWhenToUse:
			for v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			if v.Kind != yaml.ScalarNode {
				ps.errorf(p, line, "%s must be a string, not a %s", key, kindName(v.Kind))
				ok = false
				continue
			}
			value := v.Value
			if v.Tag == "!!null" {
				value = ""
			}
			fields[key] = field{value: strings.TrimSpace(value), line: line}
		default:
			if h, found := hints[key]; found {
				ps.warnf(p, line, "unknown key %q ignored (did you mean %s?)", key, h)
			} else {
				ps.warnf(p, line, "unknown key %q ignored", key)
			}
		}
	}
	return fields, ok
}

// yamlLine matches the position yaml/v3 puts in its syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// parserProblems are the messages of yaml/v3's parser (as opposed to its
// scanner). yaml/v3 reports the 0-based line of the mark for those, and
// the 1-based line for scanner errors; a line 0 is not reported at all.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

var unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// yamlError returns the 1-based line in front of a yaml/v3 parse error
// and its message without yaml's prefix. The line is 1 when yaml gives
// none and it cannot be found otherwise.
func yamlError(front []byte, err error) (line int, msg string) {
	msg = strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		msg = err.Error()[len(m[0]):]
		if parserProblems[msg] {
			n++
		}
		return max(n, 1), msg
	}
	if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(front, []byte("*"+m[1])); i >= 0 {
			return lineAt(front, i), msg
		}
	}
	return 1, msg
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

// title returns the text of the first "# " heading outside code fences.
func title(body string) string {
	fence := ""
	for line := range strings.Lines(body) {
		line = strings.TrimRight(line, "\r\n")
		trimmed := strings.TrimLeft(line, " ")
		if len(line)-len(trimmed) <= 3 {
			for _, f := range []string{"```", "~~~"} {
				if strings.HasPrefix(trimmed, f) {
					switch {
					case fence == "":
						fence = f
					case fence == f:
						fence = ""
					}
				}
			}
		}
		if fence != "" {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "#"); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "\t")) {
			if t := strings.TrimSpace(rest); t != "" {
				return t
			}
		}
	}
	return ""
}

// invalidUTF8 returns the offset of the first invalid UTF-8 sequence, or -1.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// lineAt returns the 1-based line of byte offset off.
func lineAt(b []byte, off int) int { return bytes.Count(b[:off], []byte("\n")) + 1 }

// Select returns the skills of list named in names, in the order of names,
// and the names not found (for example after a configuration change). The
// session layer uses it to turn its stored active skill names back into
// skills.
func Select(list []*Skill, names []string) (found []*Skill, missing []string) {
	for _, n := range names {
		if s := find(list, n); s != nil {
			found = append(found, s)
		} else {
			missing = append(missing, n)
		}
	}
	return found, missing
}

func find(list []*Skill, name string) *Skill {
	for _, s := range list {
		if s.Name == name {
			return s
		}
	}
	return nil
}
