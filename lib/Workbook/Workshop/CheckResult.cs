using System.Net;

namespace Workbook.Workshop;

/// <summary>How an exercise stands: solved, answered but not right yet, or still the untouched stub.</summary>
public enum CheckStatus { Passed, Failed, NotDone }

/// <summary>
/// The verdict of one exercise's check cell: which exercise, how it stands, and a message (what was confirmed, a
/// specific hint about what is wrong, or what to fill in). A check never throws for a wrong or missing answer, so a
/// notebook with untouched stubs still runs to the end.
/// </summary>
public sealed record CheckResult(string Exercise, CheckStatus Status, string Message)
{
    public bool Passed => Status == CheckStatus.Passed;

    public static CheckResult Pass(string exercise, string message) => new(exercise, CheckStatus.Passed, message);
    public static CheckResult Fail(string exercise, string hint) => new(exercise, CheckStatus.Failed, hint);

    /// <summary>The stub is untouched: the answer is still <c>null</c>.</summary>
    public static CheckResult NotDone(string exercise, string what) =>
        new(exercise, CheckStatus.NotDone, $"not done yet: {what}, then run this cell again.");

    public string Verdict => Status switch
    {
        CheckStatus.Passed => "passed",
        CheckStatus.Failed => "not right yet",
        _ => "not done yet",
    };

    public override string ToString() => Status == CheckStatus.NotDone
        ? $"Exercise {Exercise}: {Message}"
        : $"Exercise {Exercise} {Verdict}: {Message}";

    /// <summary>A coloured box for notebooks and HTML reports (green, amber, grey).</summary>
    public string Html()
    {
        var (border, background) = Status switch
        {
            CheckStatus.Passed => ("#1a7f37", "#e6f4ea"),
            CheckStatus.Failed => ("#b35900", "#fff4e5"),
            _ => ("#6e7781", "#f3f4f6"),
        };
        return $"<div class=\"workshop-check workshop-{Status.ToString().ToLowerInvariant()}\" style=\"border-left:4px solid {border};background:{background};" +
               $"padding:6px 10px;margin:4px 0;font-family:sans-serif\">{WebUtility.HtmlEncode(ToString())}</div>";
    }
}
