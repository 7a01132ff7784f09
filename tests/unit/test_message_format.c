/*
 * The formatting subset of a message body (workers/handlers/message_format.h):
 * what it turns into HTML, and that nothing of the sender's passes through
 * unescaped.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "message_format.h"

static void renders(const char *body, const char *expected)
{
    char *html = usher_message_html(body);

    cr_assert_str_eq(html, expected, "body %s", body);
    free(html);
}

Test(message_format, paragraphs_split_at_blank_lines_and_keep_line_breaks)
{
    renders("Hello\nall\n\nDoors open at 8.", "<p>Hello<br>\nall</p>\n<p>Doors open at 8.</p>\n");
    renders("a\r\n\r\n\r\nb\r\n", "<p>a</p>\n<p>b</p>\n");
    renders("", "");
    renders("\n \n\t\n", "");
}

Test(message_format, dash_lines_make_a_list)
{
    renders("- coffee\n- lunch", "<ul><li>coffee</li><li>lunch</li></ul>\n");
    renders("Bring:\n- a pen", "<p>Bring:<br>\n- a pen</p>\n");
}

Test(message_format, bold_and_italic_close_on_the_same_line)
{
    renders("**Hall 3** now", "<p><strong>Hall 3</strong> now</p>\n");
    renders("an *early* start", "<p>an <em>early</em> start</p>\n");
    renders("**bold *and* more**", "<p><strong>bold <em>and</em> more</strong></p>\n");
    renders("2 * 3 and *x\ny*", "<p>2 * 3 and *x<br>\ny*</p>\n");
    renders("2 * 3 * 4 and a *b *", "<p>2 * 3 * 4 and a *b *</p>\n");
    renders("****", "<p>****</p>\n");
}

Test(message_format, urls_become_links_without_trailing_punctuation)
{
    renders("See https://example.org/a?b=1&c=2.",
            "<p>See <a href=\"https://example.org/a?b=1&amp;c=2\">"
            "https://example.org/a?b=1&amp;c=2</a>.</p>\n");
    renders("http:// alone", "<p>http:// alone</p>\n");
}

Test(message_format, markup_of_the_sender_is_escaped)
{
    renders("<script>alert('x')</script> & \"q\"",
            "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;</p>\n");
    renders("https://e.org/\"onmouseover=\"x",
            "<p><a href=\"https://e.org/\">https://e.org/</a>&quot;onmouseover=&quot;x</p>\n");
    renders("**<b>**", "<p><strong>&lt;b&gt;</strong></p>\n");
    renders("javascript:alert(1)", "<p>javascript:alert(1)</p>\n");
}
