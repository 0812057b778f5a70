// Boost.JSON in header-only mode: its implementation is compiled here, once
// for every program that links raftkit_example_json.
#include <boost/json/src.hpp>
