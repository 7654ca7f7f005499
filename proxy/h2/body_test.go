package h2

import (
	"net/http"
	"strconv"
	"testing"
)

// responseStatus's allocation-free cases agree with the general one.
func TestResponseStatus(t *testing.T) {
	t.Parallel()
	for _, c := range []int{200, 204, 404, 201, 500, 299} {
		if got, want := responseStatus(c), strconv.Itoa(c)+" "+http.StatusText(c); got != want {
			t.Errorf("responseStatus(%d) = %q, want %q", c, got, want)
		}
	}
}
