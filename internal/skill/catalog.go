package skill

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"
)

const (
	skillsDir  = "skills"
	tenantsDir = "tenants"
	skillFile  = "SKILL.md"
)

// configName is the pattern of set and tenant directory names (the same
// as agentd's tenant names).
var configName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Catalog holds every skill set and tenant fork of a configuration tree.
// It is immutable and safe for concurrent use.
type Catalog struct {
	sets     map[string]*set
	tenants  map[string]map[string]*Skill // tenant → name → fork
	warnings []*Problem
}

type set struct {
	skills map[string]*Skill
	hash   string
}

// Load reads every skill set and tenant fork under skills/ in fsys. It
// returns all problems at once, joined with [errors.Join]; each is a
// [*Problem]. A missing skills directory is an error that wraps
// [fs.ErrNotExist]. Warnings are kept in the catalog.
func Load(fsys fs.FS) (*Catalog, error) {
	entries, err := fs.ReadDir(fsys, skillsDir)
	if err != nil {
		return nil, fmt.Errorf("load skills: %w", err)
	}
	c := &Catalog{sets: map[string]*set{}, tenants: map[string]map[string]*Skill{}}
	var ps problems
	var forks []byte // digest of skills/tenants, part of every set's hash
	setDigests := map[string][]byte{}
	for _, e := range entries {
		dir := skillsDir + "/" + e.Name()
		if skipped(e.Name()) || linkedDir(fsys, dir, e, &ps) || !e.IsDir() {
			continue
		}
		if e.Name() == tenantsDir {
			c.loadTenants(fsys, dir, &ps)
			forks = digest(fsys, dir, &ps)
			continue
		}
		if !configName.MatchString(e.Name()) {
			ps.errorf(dir, 0, "%q is not a valid skill set name (letters, digits, '.', '_', '-'; at most 64)", e.Name())
			continue
		}
		c.sets[e.Name()] = &set{skills: loadGroup(fsys, dir, "", &ps)}
		setDigests[e.Name()] = digest(fsys, dir, &ps)
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	for name, s := range c.sets {
		h := sha256.New()
		fmt.Fprintf(h, "agentd skill set %s\n", name)
		h.Write(setDigests[name])
		h.Write(forks)
		s.hash = hex.EncodeToString(h.Sum(nil))
	}
	c.warnings = ps.warns
	return c, nil
}

func (c *Catalog) loadTenants(fsys fs.FS, dir string, ps *problems) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		ps.errorf(dir, 0, "%v", ioMessage(err))
		return
	}
	for _, e := range entries {
		tdir := dir + "/" + e.Name()
		if skipped(e.Name()) || linkedDir(fsys, tdir, e, ps) || !e.IsDir() {
			continue
		}
		if !configName.MatchString(e.Name()) {
			ps.errorf(tdir, 0, "%q is not a valid tenant name (letters, digits, '.', '_', '-'; at most 64)", e.Name())
			continue
		}
		c.tenants[e.Name()] = loadGroup(fsys, tdir, e.Name(), ps)
	}
}

// loadGroup loads the skills directly under dir: a set, or one tenant's
// forks. Names are unique within a group.
func loadGroup(fsys fs.FS, dir, tenant string, ps *problems) map[string]*Skill {
	skills := map[string]*Skill{}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		ps.errorf(dir, 0, "%v", ioMessage(err))
		return skills
	}
	for _, e := range entries {
		sdir := dir + "/" + e.Name()
		if skipped(e.Name()) || linkedDir(fsys, sdir, e, ps) || !e.IsDir() {
			continue
		}
		p := sdir + "/" + skillFile
		data, err := fs.ReadFile(fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			ps.warnf(sdir, 0, "no %s: not a skill", skillFile)
			continue
		}
		if err != nil {
			ps.errorf(p, 0, "%v", ioMessage(err))
			continue
		}
		s, line := parse(p, data, ps)
		if s == nil {
			continue
		}
		if prev, dup := skills[s.Name]; dup {
			ps.errorf(p, line, "skill name %q is already used by %s", s.Name, prev.Path)
			continue
		}
		s.Tenant = tenant
		s.Resources, err = resources(fsys, sdir, ps)
		if err != nil {
			ps.errorf(sdir, 0, "list resources: %v", err)
			continue
		}
		skills[s.Name] = s
	}
	return skills
}

// Sets returns the names of the skill sets, sorted.
func (c *Catalog) Sets() []string { return slices.Sorted(maps.Keys(c.sets)) }

// Tenants returns the tenants that have forks, sorted.
func (c *Catalog) Tenants() []string { return slices.Sorted(maps.Keys(c.tenants)) }

// Warnings returns what Load found suspicious but accepted: skills without
// a description, unknown frontmatter keys, directories without SKILL.md,
// large SKILL.md files.
func (c *Catalog) Warnings() []*Problem { return slices.Clone(c.warnings) }

// Skills returns the skills of set as tenant sees them, sorted by name:
// the tenant's forks replace the set's skills of the same name and add the
// ones the set lacks. An empty tenant, or one without forks, sees the set
// as is. An unknown set is an error wrapping [ErrUnknownSet].
func (c *Catalog) Skills(set, tenant string) ([]*Skill, error) {
	s, err := c.set(set)
	if err != nil {
		return nil, err
	}
	merged := maps.Clone(s.skills)
	maps.Copy(merged, c.tenants[tenant])
	list := slices.Collect(maps.Values(merged))
	slices.SortFunc(list, func(a, b *Skill) int { return strings.Compare(a.Name, b.Name) })
	return list, nil
}

// Hash returns a hex SHA-256 over the content of set and of every tenant
// fork: each file's path and content, hidden files and __pycache__
// excluded. Any change that can change what some tenant sees in the set
// changes it. An unknown set is an error wrapping [ErrUnknownSet].
func (c *Catalog) Hash(set string) (string, error) {
	s, err := c.set(set)
	if err != nil {
		return "", err
	}
	return s.hash, nil
}

func (c *Catalog) set(name string) (*set, error) {
	if s, ok := c.sets[name]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("%w %q (sets: %s)", ErrUnknownSet, name, strings.Join(c.Sets(), ", "))
}

// resources lists Agentao's resource directories of the skill in dir.
func resources(fsys fs.FS, dir string, ps *problems) ([]ResourceDir, error) {
	var out []ResourceDir
	for _, rd := range resourceDirs {
		base := dir + "/" + rd.name
		var files []string
		err := fs.WalkDir(fsys, base, func(p string, d fs.DirEntry, err error) error {
			if p == base && (errors.Is(err, fs.ErrNotExist) || (err == nil && !d.IsDir())) {
				return fs.SkipAll // no such directory
			}
			if err != nil {
				return err
			}
			if p != base && skipped(d.Name()) {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if linkedDir(fsys, p, d, ps) {
				return nil
			}
			if !d.IsDir() && strings.HasSuffix(d.Name(), rd.ext) {
				files = append(files, strings.TrimPrefix(p, dir+"/"))
			}
			return nil
		})
		if err != nil {
			return nil, ioMessage(err)
		}
		if len(files) == 0 {
			continue
		}
		r := ResourceDir{Name: rd.name, Files: files}
		if len(files) > MaxResources {
			r.Files, r.Omitted = files[:MaxResources:MaxResources], len(files)-MaxResources
		}
		out = append(out, r)
	}
	return out, nil
}

// digest lists every file under dir (hidden files and __pycache__
// excluded) as "path NUL sha256 LF", in walk order.
func digest(fsys fs.FS, dir string, ps *problems) []byte {
	var out []byte
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && skipped(d.Name()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || d.Type()&fs.ModeSymlink != 0 && isLinkToDir(fsys, p) {
			return nil // links to directories: warned about while loading
		}
		f, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		out = fmt.Appendf(out, "%s\x00%x\n", p, h.Sum(nil))
		return nil
	})
	if err != nil {
		ps.errorf(dir, 0, "hash: %v", err)
	}
	return out
}

// skipped reports whether a directory entry is ignored everywhere.
func skipped(name string) bool { return strings.HasPrefix(name, ".") || name == "__pycache__" }

// linkedDir reports whether e, at p, is a symbolic link to a directory,
// and warns about it: such links are not followed, so that a set's skills
// and its hash always cover the same files.
func linkedDir(fsys fs.FS, p string, e fs.DirEntry, ps *problems) bool {
	if e.Type()&fs.ModeSymlink == 0 || !isLinkToDir(fsys, p) {
		return false
	}
	ps.warnf(p, 0, "symbolic link to a directory: not followed")
	return true
}

// isLinkToDir reports whether the symbolic link p points to a directory.
func isLinkToDir(fsys fs.FS, p string) bool {
	fi, err := fs.Stat(fsys, p)
	return err == nil && fi.IsDir()
}

// ioMessage drops the path from an *fs.PathError: problems carry it.
func ioMessage(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}
