"""The pytest plugin itself: isolation per test, and the server's log on failure."""


def test_a_failing_test_shows_what_the_server_logged_during_it(pytester):
    pytester.makepyfile(
        """
        import urllib.request

        def test_polls_an_unknown_job(upload_mock):
            request = urllib.request.Request(
                upload_mock.base_url + "/api/fansly/media/upload/424242/status",
                headers=upload_mock.fansly_headers(),
            )
            try:
                urllib.request.urlopen(request)
            except Exception:
                pass
            assert False, "fails on purpose"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- mock-server stderr -*",
            "*request*/api/fansly/media/upload/424242/status*404*",
        ]
    )


def test_each_test_gets_its_own_session_and_clock(pytester):
    pytester.makepyfile(
        """
        seen = []

        def test_one(upload_mock):
            seen.append(upload_mock.name)
            upload_mock.advance("1h")

        def test_two(upload_mock):
            assert upload_mock.name not in seen
            assert upload_mock.jobs() == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
