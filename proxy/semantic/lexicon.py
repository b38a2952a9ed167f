"""Word lists the prompt features are read with (:mod:`proxy.semantic.features`): data only.

``OPPOSITE_PAIRS``: words that turn a question into another when one replaces the other (``before:after``,
``buy:sell``); ``a_b`` is a two-word phrase (``log_in:log_out``). Each side is matched by its stem.
"""

from __future__ import annotations

OPPOSITE_PAIRS = """
before:after increase:decrease increasing:decreasing raise:lower larger:smaller largest:smallest bigger:smaller
biggest:smallest big:small more:less most:least max:min maximum:minimum best:worst better:worse buy:sell
buying:selling hot:cold hottest:coldest hotter:colder warm:cool enable:disable add:remove upload:download
import:export input:output push:pull win:lose winner:loser true:false left:right north:south east:west male:female
high:low higher:lower highest:lowest long:short longer:shorter longest:shortest fast:slow faster:slower
fastest:slowest early:late earlier:later earliest:latest first:last young:old younger:older cheap:expensive
cheapest:expensive cheaper:expensive positive:negative plus:minus above:below inside:outside top:bottom
ascending:descending encrypt:decrypt encryption:decryption encode:decode compress:decompress
serialize:deserialize lock:unlock install:uninstall accept:reject allow:deny include:exclude inner:outer
lowercase:uppercase horizontal:vertical row:column client:server send:receive borrow:lend arrive:depart
arrival:departure gain:lose profit:loss debit:credit asset:liability income:expense wet:dry light:dark
strong:weak strength:weakness strengths:weaknesses rich:poor happy:sad love:hate like:dislike pro:con
pros:cons advantage:disadvantage advantages:disadvantages benefit:drawback benefits:drawbacks
synchronous:asynchronous sync:async static:dynamic public:private mutable:immutable always:never all:none
everything:nothing success:failure succeed:fail forward:backward start:stop open:close opened:closed
connect:disconnect mount:unmount attach:detach show:hide visible:hidden join:leave online:offline
legal:illegal safe:dangerous heavy:light thick:thin wide:narrow deep:shallow full:empty morning:evening
day:night summer:winter spring:autumn spring:fall sunrise:sunset men:women man:woman boy:girl husband:wife
father:mother son:daughter brother:sister uncle:aunt king:queen minimum:maximum min:max floor:ceiling
min:maximum lowest:highest under:over underweight:overweight underestimate:overestimate import:export
inbound:outbound incoming:outgoing ingress:egress upstream:downstream uphill:downhill upstairs:downstairs
upgrade:downgrade upvote:downvote sign_in:sign_out log_in:log_out login:logout signin:signout zoom_in:zoom_out
turn_on:turn_off switch_on:switch_off opt_in:opt_out check_in:check_out scroll_up:scroll_down
scale_up:scale_down yesterday:tomorrow last:next previous:next past:future was:will were:will ago:will
earlier:later before:later
"""
