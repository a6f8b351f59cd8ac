using System.Globalization;

namespace Workbook.Diagnostics;

/// <summary>
/// Memory figures of a process from Linux's <c>/proc/PID/status</c> (<c>VmHWM</c>, <c>VmRSS</c>, <c>RssAnon</c>, ...).
/// Lines read <c>"VmHWM:\t  1668 kB"</c>, but the padding shrinks as numbers grow: from 10 GB on it is
/// <c>"VmHWM:\t17929180 kB"</c>, with no space before the number, which splitting on spaces misread as "kB".
/// </summary>
public static class ProcessStatus
{
    /// <summary>The field's value in bytes from status text, or null when the field is missing or not in kB.</summary>
    public static long? Bytes(IEnumerable<string> statusLines, string field)
    {
        string key = field.EndsWith(':') ? field : field + ":";
        foreach (var line in statusLines)
        {
            if (!line.StartsWith(key, StringComparison.Ordinal)) continue;
            var parts = line[key.Length..].Split(new[] { ' ', '\t' }, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && parts[1] == "kB" && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long kb) && kb <= long.MaxValue / 1024)
                return kb * 1024;
            return null;
        }
        return null;
    }

    /// <summary>The field's value in bytes for process <paramref name="pid"/> (this process when null); 0 where /proc is not available.</summary>
    public static long Bytes(string field, int? pid = null)
    {
        string path = pid is int p ? $"/proc/{p}/status" : "/proc/self/status";
        try
        {
            return File.Exists(path) ? Bytes(File.ReadLines(path), field) ?? 0 : 0;
        }
        catch (IOException)
        {
            return 0; // the process ended while being read
        }
    }
}
