"""A small CPU language identifier for short social-media text.

Supports en, es, fr, de, pt, it, nl, and also names pl, tr, id, sv and ca (see ``_CORE``: these five take
no confidence from the first seven). Text mostly in another script (Japanese kana, Hangul, Han, Cyrillic,
Arabic, ...) is not guessed at: ``script_languages`` names the languages written in that script.
Each language has a profile of character 1–4-grams
(words padded with spaces, so short function words become whole n-grams such as `` de ``)
built from the sample text shipped below, written for this project in the register of
comments and replies. Scoring is multinomial naive Bayes over those n-grams; the
confidence is a tempered posterior, so one stray word does not look certain.

No model is downloaded and nothing runs at import time: the profiles are built on the
first call (a few milliseconds) and cached.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

__all__ = ["LANGUAGES", "MIN_LETTERS", "LanguageGuess", "detect_language", "guess_language", "possible_languages",
           "script_languages"]

# Fewer letters than this and we don't guess at all.
MIN_LETTERS = 6
# Only the first characters are read: plenty to tell, and the cost stays bounded.
MAX_CHARS = 1000

_SAMPLES: dict[str, str] = {
    "en": """
Thank you so much for watching, this honestly made my day. I really appreciate all of you who
stayed until the end of the video. What do you think about the new recipe? Let me know in the
comments below and I will try to answer as many questions as I can. Have you ever tried making
bread at home? It is easier than it looks, you just need a little patience and some flour.
The weather has been awful this week, so we stayed inside and filmed a lot of content for you.
I would love to hear what you want to see next. Should we go back to the mountains or try the
beach this time? My friends keep telling me that I talk too fast, but I think that is just how
I am. We have been working on this project for months and we are finally ready to share it.
This is one of the best things that happened to me this year. Please be kind to each other in
the comments, everyone was a beginner once. Where did you buy those shoes? They look amazing.
I don't know why but this song always makes me happy. The kids were laughing the whole time.
Could you make a video about how you edit your photos? I have been following you since the
beginning and it is great to see how much the channel has grown. Thanks again for the support,
it means the world. See you next week with something new. Honestly, that was the hardest
workout I have ever done and my legs still hurt. If you have any tips for a first trip to
Japan, please tell me. We went there with my brother and his wife and it was wonderful.
Which one would you choose, the blue one or the green one? I think they both look great.
It's going to be a busy weekend, but we will post the next episode on Sunday morning.
You should definitely try it with a bit more salt, it makes a huge difference.
""",
    "es": """
Muchas gracias por ver el vídeo, de verdad me alegraste el día. Aprecio mucho a todos los que
se quedaron hasta el final. ¿Qué os parece la nueva receta? Dejadme vuestra opinión en los
comentarios y voy a intentar responder a todas las preguntas que pueda. ¿Alguna vez has hecho
pan en casa? Es más fácil de lo que parece, solo necesitas un poco de paciencia y harina.
Esta semana ha hecho un tiempo horrible, así que nos quedamos en casa y grabamos mucho
contenido para vosotros. Me encantaría saber qué queréis ver en el próximo vídeo. ¿Volvemos a
la montaña o probamos la playa esta vez? Mis amigos siempre me dicen que hablo demasiado
rápido, pero creo que yo soy así. Llevamos meses trabajando en este proyecto y por fin estamos
listos para compartirlo. Es una de las mejores cosas que me han pasado este año. Por favor,
sed amables en los comentarios, todos fuimos principiantes alguna vez. ¿Dónde compraste esos
zapatos? Son preciosos. No sé por qué, pero esta canción siempre me pone contento. Los niños
se estuvieron riendo todo el tiempo. ¿Podrías hacer un vídeo sobre cómo editas tus fotos?
Te sigo desde el principio y es genial ver cuánto ha crecido el canal. Gracias otra vez por
el apoyo, significa muchísimo para mí. Nos vemos la semana que viene con algo nuevo. La
verdad es que fue el entrenamiento más duro de mi vida y todavía me duelen las piernas. Si
tienes algún consejo para un primer viaje a Japón, dímelo. Fuimos con mi hermano y su mujer y
fue maravilloso. ¿Cuál elegirías, el azul o el verde? Creo que los dos quedan muy bien. Este
fin de semana va a ser muy ajetreado, pero subiremos el próximo episodio el domingo por la
mañana. Tienes que probarlo con un poco más de sal, hace una diferencia enorme. Qué bonito,
me ha encantado, sigue así. Hoy estoy muy cansado pero también muy feliz.
""",
    "fr": """
Merci beaucoup d'avoir regardé la vidéo, franchement tu as illuminé ma journée. J'apprécie
vraiment tous ceux qui sont restés jusqu'à la fin. Qu'est-ce que vous pensez de la nouvelle
recette ? Dites-moi tout dans les commentaires et je vais essayer de répondre au maximum de
questions. Est-ce que tu as déjà fait du pain à la maison ? C'est plus facile que ça en a
l'air, il faut juste un peu de patience et de la farine. Il a fait un temps horrible cette
semaine, alors nous sommes restés à l'intérieur et nous avons tourné beaucoup de contenu pour
vous. J'aimerais savoir ce que vous voulez voir ensuite. On retourne à la montagne ou on essaie
la plage cette fois ? Mes amis me disent toujours que je parle trop vite, mais je crois que
je suis comme ça. Nous travaillons sur ce projet depuis des mois et nous sommes enfin prêts à
le partager. C'est une des meilleures choses qui me soit arrivée cette année. S'il vous plaît,
soyez gentils dans les commentaires, tout le monde a été débutant un jour. Où est-ce que tu as
acheté ces chaussures ? Elles sont magnifiques. Je ne sais pas pourquoi, mais cette chanson me
rend toujours heureux. Les enfants ont rigolé tout le temps. Tu pourrais faire une vidéo sur
la façon dont tu retouches tes photos ? Je te suis depuis le début et c'est génial de voir à
quel point la chaîne a grandi. Merci encore pour votre soutien, ça compte énormément pour moi.
On se retrouve la semaine prochaine avec quelque chose de nouveau. Honnêtement, c'était
l'entraînement le plus dur de ma vie et j'ai encore mal aux jambes. Si vous avez des conseils
pour un premier voyage au Japon, n'hésitez pas. Nous y sommes allés avec mon frère et sa femme
et c'était merveilleux. Lequel tu choisirais, le bleu ou le vert ? Je trouve qu'ils sont
très beaux tous les deux. Ce week-end va être chargé, mais nous publierons le prochain
épisode dimanche matin. Tu devrais vraiment essayer avec un peu plus de sel, ça change tout.
""",
    "de": """
Vielen Dank fürs Zuschauen, das hat mir ehrlich gesagt den Tag gerettet. Ich schätze wirklich
alle, die bis zum Ende des Videos geblieben sind. Was haltet ihr von dem neuen Rezept? Schreibt
es mir in die Kommentare und ich versuche, so viele Fragen wie möglich zu beantworten. Hast du
schon einmal Brot zu Hause gebacken? Es ist einfacher, als es aussieht, man braucht nur ein
bisschen Geduld und etwas Mehl. Das Wetter war diese Woche furchtbar, deshalb sind wir drinnen
geblieben und haben viele Videos für euch gedreht. Ich würde gern wissen, was ihr als Nächstes
sehen wollt. Sollen wir wieder in die Berge fahren oder diesmal an den Strand? Meine Freunde
sagen immer, dass ich zu schnell rede, aber ich glaube, so bin ich einfach. Wir arbeiten seit
Monaten an diesem Projekt und sind endlich bereit, es mit euch zu teilen. Das ist eines der
schönsten Dinge, die mir dieses Jahr passiert sind. Bitte seid nett zueinander in den
Kommentaren, jeder hat einmal angefangen. Wo hast du diese Schuhe gekauft? Die sehen großartig
aus. Ich weiß nicht warum, aber dieses Lied macht mich immer glücklich. Die Kinder haben die
ganze Zeit gelacht. Könntest du ein Video darüber machen, wie du deine Fotos bearbeitest? Ich
folge dir seit dem Anfang und es ist toll zu sehen, wie sehr der Kanal gewachsen ist. Danke
noch einmal für die Unterstützung, das bedeutet mir sehr viel. Wir sehen uns nächste Woche mit
etwas Neuem. Ehrlich gesagt war das das härteste Training meines Lebens und meine Beine tun
immer noch weh. Wenn ihr Tipps für eine erste Reise nach Japan habt, sagt Bescheid. Wir waren
mit meinem Bruder und seiner Frau dort und es war wunderschön. Welches würdest du nehmen, das
blaue oder das grüne? Ich finde, beide sehen super aus. Das Wochenende wird ziemlich voll,
aber wir veröffentlichen die nächste Folge am Sonntagmorgen. Du solltest es unbedingt mit
etwas mehr Salz probieren, das macht einen riesigen Unterschied. Nicht schlecht, weiter so.
""",
    "pt": """
Muito obrigado por assistir ao vídeo, sinceramente você fez o meu dia. Eu agradeço muito a
todos que ficaram até o final. O que vocês acharam da nova receita? Me contem nos comentários
e eu vou tentar responder o máximo de perguntas que conseguir. Você já fez pão em casa? É mais
fácil do que parece, só precisa de um pouco de paciência e farinha. O tempo esteve horrível
esta semana, então ficamos em casa e gravamos muito conteúdo para vocês. Eu adoraria saber o
que vocês querem ver a seguir. Voltamos para as montanhas ou tentamos a praia desta vez? Os
meus amigos sempre dizem que eu falo rápido demais, mas acho que eu sou assim mesmo. Estamos
trabalhando neste projeto há meses e finalmente estamos prontos para compartilhar. É uma das
melhores coisas que me aconteceram este ano. Por favor, sejam gentis nos comentários, todo
mundo já foi iniciante um dia. Onde você comprou esses sapatos? São lindos demais. Não sei
porquê, mas essa música sempre me deixa feliz. As crianças ficaram rindo o tempo todo. Você
poderia fazer um vídeo sobre como edita as suas fotos? Eu te sigo desde o começo e é incrível
ver o quanto o canal cresceu. Obrigado mais uma vez pelo apoio, isso significa muito para mim.
Nos vemos na próxima semana com alguma coisa nova. Sinceramente, foi o treino mais difícil
da minha vida e as minhas pernas ainda doem. Se vocês tiverem dicas para uma primeira viagem
ao Japão, me digam. Fomos com o meu irmão e a mulher dele e foi maravilhoso. Qual você
escolheria, o azul ou o verde? Acho que os dois ficam ótimos. Este fim de semana vai ser
corrido, mas vamos publicar o próximo episódio no domingo de manhã. Você tem que experimentar
com um pouco mais de sal, faz uma diferença enorme. Que legal, adorei, continua assim. Não
vejo a hora do próximo vídeo, vocês são demais. Estou muito cansado hoje, mas também muito
feliz com tudo isso.
""",
    "it": """
Grazie mille per aver guardato il video, sinceramente mi hai migliorato la giornata. Apprezzo
davvero tutti quelli che sono rimasti fino alla fine. Cosa ne pensate della nuova ricetta?
Scrivetemelo nei commenti e cercherò di rispondere a più domande possibile. Hai mai fatto il
pane in casa? È più facile di quanto sembri, ci vuole solo un po' di pazienza e della farina.
Questa settimana il tempo è stato orribile, quindi siamo rimasti a casa e abbiamo girato un
sacco di contenuti per voi. Mi piacerebbe sapere cosa volete vedere nel prossimo video.
Torniamo in montagna o questa volta proviamo il mare? I miei amici mi dicono sempre che parlo
troppo veloce, ma credo di essere fatto così. Stiamo lavorando a questo progetto da mesi e
finalmente siamo pronti a condividerlo. È una delle cose più belle che mi siano successe
quest'anno. Per favore, siate gentili nei commenti, tutti siamo stati principianti. Dove hai
comprato quelle scarpe? Sono bellissime. Non so perché, ma questa canzone mi rende sempre
felice. I bambini hanno riso tutto il tempo. Potresti fare un video su come modifichi le tue
foto? Ti seguo dall'inizio ed è bellissimo vedere quanto è cresciuto il canale. Grazie ancora
per il supporto, per me significa tantissimo. Ci vediamo la prossima settimana con qualcosa di
nuovo. Onestamente è stato l'allenamento più duro della mia vita e mi fanno ancora male le
gambe. Se avete qualche consiglio per un primo viaggio in Giappone, ditemelo pure. Ci siamo
andati con mio fratello e sua moglie ed è stato meraviglioso. Quale sceglieresti, quello blu o
quello verde? Secondo me stanno bene tutti e due. Questo fine settimana sarà pieno di impegni,
ma pubblicheremo il prossimo episodio domenica mattina. Dovresti assolutamente provarlo con un
po' più di sale, fa una differenza enorme. Che bello, mi è piaciuto tantissimo, continua così.
Oggi sono molto stanco ma anche molto contento.
""",
    "nl": """
Heel erg bedankt voor het kijken, dit heeft echt mijn dag goed gemaakt. Ik waardeer iedereen
die tot het einde van de video is gebleven. Wat vinden jullie van het nieuwe recept? Laat het
me weten in de reacties en ik probeer zoveel mogelijk vragen te beantwoorden. Heb jij ooit zelf
brood gebakken? Het is makkelijker dan het lijkt, je hebt alleen een beetje geduld en wat meel
nodig. Het weer was deze week verschrikkelijk, dus zijn we binnen gebleven en hebben we veel
video's voor jullie opgenomen. Ik zou graag willen weten wat jullie hierna willen zien. Gaan we
terug naar de bergen of proberen we deze keer het strand? Mijn vrienden zeggen altijd dat ik te
snel praat, maar ik denk dat ik gewoon zo ben. We werken al maanden aan dit project en we zijn
eindelijk klaar om het te delen. Dit is een van de mooiste dingen die me dit jaar zijn
overkomen. Wees alsjeblieft aardig voor elkaar in de reacties, iedereen is ooit begonnen. Waar
heb je die schoenen gekocht? Ze zien er geweldig uit. Ik weet niet waarom, maar dit liedje
maakt me altijd blij. De kinderen hebben de hele tijd gelachen. Zou je een video kunnen maken
over hoe je je foto's bewerkt? Ik volg je al vanaf het begin en het is geweldig om te zien hoe
hard het kanaal gegroeid is. Nogmaals bedankt voor de steun, het betekent heel veel voor me.
Tot volgende week met iets nieuws. Eerlijk gezegd was dat de zwaarste training van mijn leven
en mijn benen doen nog steeds pijn. Als jullie tips hebben voor een eerste reis naar Japan,
laat het weten. We zijn er met mijn broer en zijn vrouw geweest en het was prachtig. Welke zou
jij kiezen, de blauwe of de groene? Ik vind ze allebei mooi. Het wordt een druk weekend, maar
we zetten de volgende aflevering zondagochtend online. Je moet het echt eens proberen met wat
meer zout, dat maakt een enorm verschil. Wat leuk, ik vond het geweldig, ga zo door. Ik ben
vandaag heel moe maar ook heel blij.
""",
    "pl": """
Dziękuję bardzo za oglądanie, szczerze mówiąc poprawiliście mi dzień. Naprawdę doceniam wszystkich,
którzy zostali do końca filmu. Co myślicie o nowym przepisie? Dajcie znać w komentarzach, a ja postaram
się odpowiedzieć na jak najwięcej pytań. Czy próbowałeś kiedyś upiec chleb w domu? To łatwiejsze, niż
się wydaje, potrzebujesz tylko trochę cierpliwości i mąki. W tym tygodniu pogoda była okropna, więc
zostaliśmy w domu i nagraliśmy dla was mnóstwo materiału. Chętnie usłyszę, co chcecie zobaczyć następnym
razem. Wracamy w góry czy tym razem spróbujemy plaży? Moi przyjaciele ciągle mi mówią, że mówię za
szybko, ale chyba po prostu taki jestem. Pracujemy nad tym projektem od miesięcy i w końcu jesteśmy
gotowi, żeby się nim podzielić. To jedna z najlepszych rzeczy, jakie mi się przydarzyły w tym roku.
Bądźcie dla siebie mili w komentarzach, każdy był kiedyś początkujący. Gdzie kupiłaś te buty? Wyglądają
niesamowicie. Nie wiem dlaczego, ale ta piosenka zawsze mnie cieszy. Dzieci śmiały się przez cały czas.
Czy mógłbyś zrobić film o tym, jak edytujesz swoje zdjęcia? Obserwuję cię od samego początku i wspaniale
widzieć, jak bardzo kanał urósł. Jeszcze raz dziękuję za wsparcie, to dla mnie bardzo dużo znaczy. Do
zobaczenia w przyszłym tygodniu z czymś nowym. Szczerze mówiąc, to był najcięższy trening w moim życiu
i nogi wciąż mnie bolą. Jeśli macie jakieś rady na pierwszą podróż do Japonii, napiszcie. Pojechaliśmy
tam z moim bratem i jego żoną i było cudownie. Który byś wybrał, niebieski czy zielony? Myślę, że oba
wyglądają świetnie. To będzie pracowity weekend, ale następny odcinek opublikujemy w niedzielę rano.
Koniecznie spróbuj z odrobiną więcej soli, to robi ogromną różnicę.
""",
    "tr": """
İzlediğiniz için çok teşekkür ederim, açıkçası günümü güzelleştirdiniz. Videonun sonuna kadar kalan
herkese gerçekten minnettarım. Yeni tarif hakkında ne düşünüyorsunuz? Aşağıdaki yorumlarda bana
söyleyin, elimden geldiğince çok soruya cevap vermeye çalışacağım. Hiç evde ekmek yapmayı denediniz mi?
Göründüğünden daha kolay, sadece biraz sabır ve biraz una ihtiyacınız var. Bu hafta hava çok kötüydü, o
yüzden evde kaldık ve sizin için bir sürü video çektik. Bundan sonra ne görmek istediğinizi duymayı çok
isterim. Dağlara geri mi dönelim yoksa bu sefer sahili mi deneyelim? Arkadaşlarım bana hep çok hızlı
konuştuğumu söylüyor ama bence ben böyleyim. Aylardır bu proje üzerinde çalışıyoruz ve sonunda
paylaşmaya hazırız. Bu yıl başıma gelen en güzel şeylerden biri bu. Lütfen yorumlarda birbirinize nazik
olun, herkes bir zamanlar acemiydi. O ayakkabıları nereden aldın? Harika görünüyorlar. Neden bilmiyorum
ama bu şarkı beni her zaman mutlu ediyor. Çocuklar bütün zaman boyunca güldüler. Fotoğraflarını nasıl
düzenlediğin hakkında bir video yapabilir misin? Seni en başından beri takip ediyorum ve kanalın ne
kadar büyüdüğünü görmek harika. Destek için tekrar teşekkürler, benim için çok şey ifade ediyor. Gelecek
hafta yeni bir şeyle görüşürüz. Dürüst olmak gerekirse bu hayatımda yaptığım en zor antrenmandı ve
bacaklarım hâlâ ağrıyor. Japonya'ya ilk gezi için tavsiyeniz varsa lütfen bana söyleyin. Oraya kardeşim
ve karısıyla gittik ve harikaydı. Hangisini seçerdin, maviyi mi yeşili mi? Bence ikisi de çok güzel
görünüyor. Yoğun bir hafta sonu olacak ama bir sonraki bölümü pazar sabahı yayınlayacağız. Kesinlikle
biraz daha tuzla denemelisin, çok büyük fark yaratıyor.
""",
    "id": """
Terima kasih banyak sudah menonton, jujur ini bikin hari saya menyenangkan. Saya sangat menghargai
kalian semua yang menonton sampai akhir video. Bagaimana menurut kalian resep yang baru? Kasih tahu
saya di kolom komentar dan saya akan coba menjawab sebanyak mungkin pertanyaan. Apakah kamu pernah
mencoba membuat roti di rumah? Ternyata lebih mudah dari kelihatannya, kamu hanya perlu sedikit
kesabaran dan tepung. Cuaca minggu ini sangat buruk, jadi kami tinggal di dalam rumah dan merekam banyak
konten untuk kalian. Saya ingin sekali tahu apa yang ingin kalian lihat berikutnya. Apakah kita kembali
ke gunung atau mencoba pantai kali ini? Teman-teman saya selalu bilang kalau saya bicara terlalu cepat,
tapi saya rasa memang begitulah saya. Kami sudah mengerjakan proyek ini selama berbulan-bulan dan
akhirnya kami siap untuk membagikannya. Ini adalah salah satu hal terbaik yang terjadi pada saya tahun
ini. Tolong bersikap baik satu sama lain di kolom komentar, semua orang pernah jadi pemula. Di mana kamu
membeli sepatu itu? Kelihatannya keren sekali. Saya tidak tahu kenapa, tapi lagu ini selalu membuat
saya senang. Anak-anak tertawa sepanjang waktu. Bisakah kamu membuat video tentang cara kamu mengedit
foto? Saya sudah mengikuti kamu sejak awal dan senang sekali melihat betapa besar channel ini tumbuh.
Terima kasih lagi atas dukungannya, itu sangat berarti bagi saya. Sampai jumpa minggu depan dengan
sesuatu yang baru. Jujur saja, itu adalah latihan paling berat yang pernah saya lakukan dan kaki saya
masih sakit. Kalau kalian punya tips untuk perjalanan pertama ke Jepang, tolong beri tahu saya. Kami
pergi ke sana bersama kakak saya dan istrinya dan rasanya luar biasa. Kamu akan pilih yang mana, yang
biru atau yang hijau? Menurut saya keduanya terlihat bagus. Akhir pekan ini akan sibuk, tapi kami akan
mengunggah episode berikutnya hari Minggu pagi. Kamu harus coba dengan sedikit lebih banyak garam, itu
membuat perbedaan yang sangat besar.
""",
    "sv": """
Tack så mycket för att ni tittade, det här gjorde ärligt talat min dag. Jag uppskattar verkligen alla
er som stannade till slutet av videon. Vad tycker ni om det nya receptet? Berätta i kommentarerna nedan
så ska jag försöka svara på så många frågor som jag kan. Har du någon gång provat att baka bröd hemma?
Det är enklare än det ser ut, du behöver bara lite tålamod och lite mjöl. Vädret har varit hemskt den
här veckan, så vi stannade inne och filmade massor av innehåll till er. Jag skulle gärna höra vad ni
vill se härnäst. Ska vi åka tillbaka till fjällen eller testa stranden den här gången? Mina vänner
säger hela tiden att jag pratar för fort, men jag tror att det bara är sån jag är. Vi har jobbat med
det här projektet i flera månader och nu är vi äntligen redo att dela det. Det här är en av de bästa
sakerna som hänt mig i år. Var snälla mot varandra i kommentarerna, alla har varit nybörjare någon gång.
Var köpte du de där skorna? De ser fantastiska ut. Jag vet inte varför, men den här låten gör mig
alltid glad. Barnen skrattade hela tiden. Kan du göra en video om hur du redigerar dina bilder? Jag har
följt dig sedan början och det är jättekul att se hur mycket kanalen har vuxit. Tack igen för stödet,
det betyder jättemycket. Vi ses nästa vecka med något nytt. Ärligt talat var det det tuffaste
träningspasset jag någonsin gjort och mina ben gör fortfarande ont. Om ni har några tips inför en första
resa till Japan, säg till. Vi åkte dit med min bror och hans fru och det var underbart. Vilken skulle du
välja, den blå eller den gröna? Jag tycker att båda ser jättebra ut. Det blir en hektisk helg, men vi
lägger upp nästa avsnitt på söndag morgon. Du borde verkligen prova med lite mer salt, det gör en enorm
skillnad.
""",
    "ca": """
Moltes gràcies per mirar el vídeo, de veritat m'has alegrat el dia. Aprecio molt tots els que us vau
quedar fins al final. Què us sembla la nova recepta? Digueu-m'ho als comentaris i intentaré respondre
totes les preguntes que pugui. Alguna vegada has fet pa a casa? És més fàcil del que sembla, només
necessites una mica de paciència i farina. Aquesta setmana ha fet un temps horrible, així que ens vam
quedar a casa i vam gravar molt de contingut per a vosaltres. M'encantaria saber què voleu veure al
proper vídeo. Tornem a la muntanya o provem la platja aquesta vegada? Els meus amics sempre em diuen que
parlo massa ràpid, però crec que jo sóc així. Fa mesos que treballem en aquest projecte i per fi estem
preparats per compartir-lo. És una de les millors coses que m'han passat aquest any. Si us plau, sigueu
amables als comentaris, tothom ha estat principiant alguna vegada. On vas comprar aquestes sabates? Són
precioses. No sé per què, però aquesta cançó sempre em posa content. Els nens van estar rient tota
l'estona. Podries fer un vídeo sobre com edites les teves fotos? Et segueixo des del principi i és
genial veure quant ha crescut el canal. Gràcies una altra vegada pel suport, significa moltíssim per a
mi. Ens veiem la setmana que ve amb alguna cosa nova. La veritat és que va ser l'entrenament més dur de
la meva vida i encara em fan mal les cames. Si teniu algun consell per a un primer viatge al Japó,
digueu-m'ho. Vam anar-hi amb el meu germà i la seva dona i va ser meravellós. Quin triaries, el blau o
el verd? Crec que tots dos queden molt bé. Aquest cap de setmana serà molt atrafegat, però penjarem el
proper episodi diumenge al matí. Has de provar-ho amb una mica més de sal, fa una diferència enorme.
Que bonic, m'ha encantat, continua així. Avui estic molt cansat però també molt content.
""",
}

# Frequent short words per language, added to the profiles with extra weight so that a
# handful of function words can decide a short text.
_FUNCTION_WORDS: dict[str, str] = {
    "en": "the and you that this with for have what but not are was they just your it's i'm "
    "don't thanks thank love so much really would could should there their will my me we",
    "es": "el la los las que de y en un una por para con es no muy pero como más gracias yo tú "
    "me te lo le nos esto eso está son qué también porque cuando hay todo",
    "fr": "le la les des une que qui et est pas je tu vous nous avec pour dans sur ce cette "
    "c'est j'ai merci très mais aussi bien tout ça au aux du",
    "de": "der die das und ist nicht ich du wir ihr ein eine mit für auf den dem sich auch "
    "danke sehr aber wie noch schon mal nur was bei zu",
    "pt": "o a os as que de e em um uma para com não muito mas como mais obrigado obrigada eu "
    "você vocês me te isso isto está são também porque quando do da no na",
    "it": "il lo la gli le che di e è un una per con non molto ma come più grazie io tu mi ti "
    "ci questo quello sono anche perché quando del della nel",
    "nl": "de het een en is niet ik je jij wij we ze met voor op van dat dit ook maar heel "
    "bedankt dank wat hoe nog al zijn er",
    "pl": "i w na z nie to jest że się do jak ale co tak już mi mnie ja ty my wy dla po od za są był było "
    "bardzo dziękuję dzięki też czy tylko jeszcze",
    "tr": "ve bir bu da de ne için çok ama ile gibi daha en mi mı mu ben sen biz siz var yok teşekkürler "
    "teşekkür ederim değil her şey güzel kadar",
    "id": "dan yang di ke dari ini itu untuk dengan tidak ada saya kamu kami kita mereka juga sudah akan bisa "
    "lagi sangat terima kasih banyak apa karena tapi",
    "sv": "och att det som en på är av för med till den inte jag du vi ni har om så men tack mycket också "
    "bara ett var kan från vad här",
    "ca": "el la els les i de que en un una per amb no molt però com més gràcies jo tu em et ho li ens això "
    "aquest és són què també perquè quan hi ha tot",
}

LANGUAGES: tuple[str, ...] = tuple(_SAMPLES)
# The languages a guess among which keeps the confidence it has among them alone. The others are there to name
# a reply in them (a Polish or Catalan reply was a low-confidence guess at Dutch or Spanish, which no check
# holds) but would take a share of every short text in a relative (Catalan of Spanish, Swedish of German)
# and leave it below the confidence the checks need.
_CORE = ("en", "es", "fr", "de", "pt", "it", "nl")

_NGRAM_SIZES = (1, 2, 3, 4)
_FUNCTION_WORD_WEIGHT = 6
_SMOOTHING = 0.5
# The posterior is tempered: log-likelihood differences are divided by this per n-gram
# before the softmax, so confidence grows with evidence instead of jumping to 1.0.
_TEMPERATURE = 1.0

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_STRIP = re.compile(r"https?://\S+|www\.\S+|[@#]\w+")


@dataclass(frozen=True)
class LanguageGuess:
    language: str | None
    confidence: float
    scores: dict[str, float]


def _words(text: str) -> list[str]:
    text = unicodedata.normalize("NFC", _STRIP.sub(" ", text)).casefold().replace("’", "'")
    return _WORD.findall(text)


def _ngrams(words: list[str]) -> list[str]:
    out: list[str] = []
    for w in words:
        padded = f" {w} "
        for n in _NGRAM_SIZES:
            if n == 1:
                out.extend(w)
                continue
            out.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return out


@dataclass(frozen=True)
class _Model:
    languages: tuple[str, ...]
    index: dict[str, int]  # n-gram -> row of ``table``; unseen n-grams use the last row
    table: np.ndarray  # (n-grams + 1, languages) log-probabilities
    # word -> (summed log-probabilities of its n-grams per language, number of n-grams): words
    # repeat across comments, so each is scored once (bounded; cleared when full).
    words: dict[str, tuple[tuple[float, ...], int]]


_WORD_CACHE_SIZE = 100_000


@cache
def _model() -> _Model:
    counts: dict[str, dict[str, int]] = {}
    for lang, sample in _SAMPLES.items():
        c: dict[str, int] = {}
        for g in _ngrams(_words(sample)):
            c[g] = c.get(g, 0) + 1
        for g in _ngrams(_words(_FUNCTION_WORDS[lang])):
            c[g] = c.get(g, 0) + _FUNCTION_WORD_WEIGHT
        counts[lang] = c
    vocab = sorted(set().union(*counts.values()))
    index = {g: i for i, g in enumerate(vocab)}
    table = np.empty((len(vocab) + 1, len(LANGUAGES)))
    for j, lang in enumerate(LANGUAGES):
        c = counts[lang]
        denom = math.log(sum(c.values()) + _SMOOTHING * len(vocab))
        table[:-1, j] = [math.log(c.get(g, 0) + _SMOOTHING) - denom for g in vocab]
        table[-1, j] = math.log(_SMOOTHING) - denom
    return _Model(LANGUAGES, index, table, {})


def _score_new_words(model: _Model, words: Sequence[str]) -> None:
    """Score ``words`` (none of them cached yet) in one numpy pass and cache them as plain floats,
    which sum quicker per text than one numpy call per word."""
    if len(model.words) + len(words) > _WORD_CACHE_SIZE:
        model.words.clear()
    grams = [_ngrams([word]) for word in words]
    unseen = len(model.index)
    rows = model.table[[model.index.get(g, unseen) for word_grams in grams for g in word_grams]]
    starts = np.cumsum([0, *(len(word_grams) for word_grams in grams[:-1])])
    for word, vector, n in zip(words, np.add.reduceat(rows, starts, axis=0).tolist(), map(len, grams), strict=True):
        model.words[word] = (tuple(vector), n)


def _word_score(model: _Model, word: str) -> tuple[tuple[float, ...], int]:
    found = model.words.get(word)
    if found is None:
        _score_new_words(model, [word])
        found = model.words[word]
    return found


def score_words(texts: Iterable[str]) -> None:
    """Score every word of ``texts`` not scored yet, in one pass, so that detecting their languages
    afterwards only reads the cache (a micro-batch of new comments has hundreds of unseen words)."""
    model = _model()
    words = list({w[:40] for text in texts for w in _words(text[:MAX_CHARS])}.difference(model.words))
    if words:
        _score_new_words(model, words)


def guess_language(text: str, candidates: tuple[str, ...] | None = None) -> LanguageGuess:
    """Score ``text`` against every supported language (or ``candidates``). When the best is one of ``_CORE``,
    the confidence and ``scores`` are among the core candidates only."""
    words = [w[:40] for w in _words(text[:MAX_CHARS])]
    letters = sum(len(w) for w in words)
    if letters < MIN_LETTERS:
        return LanguageGuess(None, 0.0, {})
    model = _model()
    langs = tuple(lang for lang in (candidates or LANGUAGES) if lang in model.languages)
    if not langs:
        return LanguageGuess(None, 0.0, {})
    scored = [_word_score(model, word) for word in words]
    totals = [sum(column) for column in zip(*(vector for vector, _ in scored), strict=True)]
    n_grams = sum(n for _, n in scored)
    loglik = {lang: totals[model.languages.index(lang)] for lang in langs}
    if max(loglik, key=loglik.__getitem__) in _CORE:
        loglik = {lang: ll for lang, ll in loglik.items() if lang in _CORE}
    best = max(loglik.values())
    # Temper by the number of words rather than n-grams: each word contributes ~10 n-grams
    # that are far from independent.
    scale = _TEMPERATURE * n_grams / max(len(words), 1)
    weights = {lang: math.exp((ll - best) / scale) for lang, ll in loglik.items()}
    z = sum(weights.values())
    probs = {lang: w / z for lang, w in weights.items()}
    top = max(probs, key=probs.__getitem__)
    return LanguageGuess(top, probs[top], probs)


def detect_language(text: str) -> tuple[str | None, float]:
    """``(iso639-1 code, confidence in [0,1])``; ``(None, 0.0)`` when the text is too short."""
    guess = guess_language(text)
    return guess.language, guess.confidence


# The languages written in each script the n-gram model does not know (the first word of the letters' Unicode
# names). Han alone could be Chinese or Japanese; with any kana it is Japanese.
_SCRIPT_LANGUAGES: dict[str, tuple[str, ...]] = {
    "HIRAGANA": ("ja",), "KATAKANA": ("ja",), "CJK": ("zh", "ja"), "HANGUL": ("ko",),
    "CYRILLIC": ("ru", "uk", "bg", "sr", "mk", "be", "kk"), "GREEK": ("el",), "ARABIC": ("ar", "fa", "ur"),
    "HEBREW": ("he", "yi"), "DEVANAGARI": ("hi", "mr", "ne"), "BENGALI": ("bn",), "TAMIL": ("ta",),
    "TELUGU": ("te",), "GUJARATI": ("gu",), "GURMUKHI": ("pa",), "THAI": ("th",), "GEORGIAN": ("ka",),
    "ARMENIAN": ("hy",), "ETHIOPIC": ("am",), "KHMER": ("km",), "LAO": ("lo",), "MYANMAR": ("my",),
    "SINHALA": ("si",),
}  # fmt: skip
_FIRST_NON_LATIN = 0x370  # Greek and Coptic: below it, letters are Latin


def script_languages(text: str) -> tuple[str, ...] | None:
    """The languages ``text`` can be in when most of its letters are in one script other than Latin, for
    example ``("ja",)`` for kana; ``None`` for Latin text, a mix, an unknown script or too few letters."""
    text = text[:MAX_CHARS]
    if text.isascii():
        return None
    letters = 0
    scripts: dict[str, int] = {}
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        if ord(ch) >= _FIRST_NON_LATIN:
            script = unicodedata.name(ch, "").split(" ", 1)[0]
            scripts[script] = scripts.get(script, 0) + 1
    japanese = ("HIRAGANA", "KATAKANA", "CJK")
    if scripts.get("HIRAGANA") or scripts.get("KATAKANA"):  # Japanese mixes kana and Han: count them as one
        scripts = {s: n for s, n in scripts.items() if s not in japanese} | {
            "HIRAGANA": sum(scripts.get(s, 0) for s in japanese)}
    if letters * 2 < MIN_LETTERS or not scripts:  # a CJK character is about a word: three say enough
        return None
    script, count = max(scripts.items(), key=lambda item: item[1])
    return _SCRIPT_LANGUAGES.get(script) if count * 2 > letters else None


def possible_languages(text: str) -> tuple[tuple[str, ...], float] | None:
    """The languages ``text`` may be in and how sure that is: its script's when not Latin (certain), else the
    n-gram guess with its confidence; None when too short to tell."""
    written_in = script_languages(text)
    if written_in is not None:
        return written_in, 1.0
    language, confidence = detect_language(text)
    return ((language,), confidence) if language is not None else None
