package profiles

// Exported for tests: the linear-time parser and the reference it must
// agree with.
var (
	ParseFast   = parseFast
	ParseStrict = parseStrict
)
