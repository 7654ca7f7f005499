package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/meshplane/mesh/checks"
)

// The JUnit XML schema as GitLab and Jenkins read it.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

// JUnit writes r as JUnit XML: a testsuite per category, a testcase per check named
// "<id>: <description>" with the category as classname. A failed check has a
// <failure> whose type is its severity ("error" or "warning"), so CI lists failed
// warnings too (whether the job fails is the exit code's business); a skipped check
// has <skipped> with the reason. All failures count in "failures"; "errors" is 0.
// Times come from Result.Duration, in seconds.
func JUnit(w io.Writer, r checks.Report) error {
	doc := junitSuites{Name: "mesh check"}
	var total time.Duration
	for _, cat := range byCategory(r) {
		suite := junitSuite{Name: cat.name}
		var catTime time.Duration
		for _, res := range cat.results {
			tc := junitCase{
				Name:      res.Check.ID + ": " + res.Check.Description,
				Classname: cat.name,
				Time:      seconds(res.Duration),
			}
			switch o := outcomeOf(res); o {
			case outcomeError, outcomeWarning:
				text := res.Message
				if res.Check.Hint != "" {
					text += "\nsee " + res.Check.Hint + " for hints"
				}
				tc.Failure = &junitFailure{
					Message: string(o) + ": " + oneLine(res.Message),
					Type:    string(o),
					Text:    xmlSafe(text),
				}
				suite.Failures++
			case outcomeSkipped:
				tc.Skipped = &junitSkipped{Message: oneLine(res.Message)}
				suite.Skipped++
			}
			suite.Tests++
			catTime += res.Duration
			suite.Cases = append(suite.Cases, tc)
		}
		suite.Time = seconds(catTime)
		total += catTime
		doc.Tests += suite.Tests
		doc.Failures += suite.Failures
		doc.Skipped += suite.Skipped
		doc.Suites = append(doc.Suites, suite)
	}
	doc.Time = seconds(total)

	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding check JUnit XML: %w", err)
	}
	if _, err := io.WriteString(w, xml.Header+string(out)+"\n"); err != nil {
		return fmt.Errorf("writing check JUnit XML: %w", err)
	}
	return nil
}

// xmlSafe replaces characters XML 1.0 cannot hold (control characters such as an
// ANSI escape in a check's message) with U+FFFD; encoding/xml does not in CDATA.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t', r == '\n', r == '\r',
			r >= 0x20 && r <= 0xD7FF,
			r >= 0xE000 && r <= 0xFFFD,
			r >= 0x10000 && r <= 0x10FFFF:
			return r
		default:
			return '\uFFFD'
		}
	}, s)
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}
