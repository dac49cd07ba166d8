"""What the demo district says: places, project ideas and the words people write.

Gusu's eight streets with plausible communities (里河社区 and 彩香一村三区 are the ones the
2018 report names); the ideas are the 房前屋后急难事 the report and its readers know. Every
resident, company and invoice here is invented.
"""

from __future__ import annotations

from dataclasses import dataclass


def _rows(text: str) -> list[tuple[str, str, str]]:
    """``id 名称`` pairs; a name ending in 村 (not 社区) is a rural village."""
    words = text.split()
    return [
        (cid, name, "rural" if name.endswith("村") else "urban")
        for cid, name in zip(words[::2], words[1::2], strict=True)
    ]


# (street, its pinyin for usernames, communities). The demo takes communities street by
# street in turn, so a small demo still spans several streets and starts with 里河社区.
STREETS = [
    (
        "金阊街道",
        "jinchang",
        _rows("""
        lihe 里河社区 caixiang-1c3q 彩香一村三区社区 caixiang-2c 彩香二村社区
        caixiang-3c 彩香三村社区 sanyuan-1c 三元一村社区 sanyuan-2c 三元二村社区
        sanyuan-4c 三元四村社区 tongjing 桐泾社区 youlian 友联社区 jinmen 金门社区
        shilu 石路社区 changmen 阊门社区 shangtang 上塘社区 diaoqiao 吊桥社区
        zhujiazhuang 朱家庄社区 zaoshi 枣市社区 bailian 白莲社区 hongqiao 虹桥社区
        xijing 西泾社区 guangji 广济社区 jiangnanyayuan 江南雅苑社区 tongxin 同心社区"""),
    ),
    (
        "白洋湾街道",
        "baiyangwan",
        _rows("""
        jinxing-cun 金星村 baiyangwan 白洋湾社区 jinhu 金湖社区 tandong-cun 潭东村
        qingtang 青塘社区 shanbang 山浜社区 xinjing 新泾社区 jinsejiayuan 金色家园社区
        hetang 荷塘社区 changqing 长青社区 lanting 兰亭社区 xiangyuan 香园社区
        pingxi 平溪社区 jinsha 金沙社区 huxin 湖心社区 songyuan 松园社区 xueyuan 学苑社区
        xinghai 星海社区 chunshen 春申社区 yufeng 玉峰社区 yongfang 永芳社区
        dongqiao 东桥社区"""),
    ),
    (
        "双塔街道",
        "shuangta",
        _rows("""
        dinghuisi 定慧寺社区 guantaiwei 官太尉社区 shiquanjie 十全街社区
        gunxiufang 滚绣坊社区 fengmen 葑门社区 zhuhui 竹辉社区 nanyuan 南园社区
        yangzhi 杨枝社区 jinfan 锦帆社区 daichengqiao 带城桥社区 wangxingqiao 望星桥社区
        fenghuang 凤凰社区 dongdajie 东大街社区 wuyachang 吴衙场社区 xinzaoqiao 新造桥社区
        wuqueqiao 乌鹊桥社区 cukuxiang 醋库巷社区 moye 莫邪社区 fengxi 葑溪社区
        xingxiuqiao 杏秀桥社区 shuangta 双塔社区 quyuan 曲园社区 nanshipi 南石皮社区
        tiancizhuang 天赐庄社区"""),
    ),
    (
        "沧浪街道",
        "canglang",
        _rows("""
        canglang-xincun 沧浪新村社区 nanhuan 南环社区 panmen 盘门社区 ruiguang 瑞光社区
        xujiang 胥江社区 wumenqiao 吴门桥社区 nanmen 南门社区 sanxiang 三香社区
        xuhong 胥虹社区 daoqian 道前社区 jingde 景德社区 shuyuan 书院社区 xinshi 新市社区
        zhuangyuan 状元社区 wannian 万年社区 nanhao 南濠社区 yinmaqiao 饮马桥社区
        ruiyun 瑞云社区 xinkang 新康社区 youyi 友谊社区 nanxin 南新社区
        xiangwang 相王社区"""),
    ),
    (
        "平江街道",
        "pingjiang",
        _rows("""
        pingjiang-xincun 平江新村社区 loumen 娄门社区 xiangmen 相门社区 beita 北塔社区
        qimen 齐门社区 lindun 临顿社区 yonglin 永林社区 xinqiao 新桥社区 pishi 皮市社区
        caoqiao 草桥社区 dongbeijie 东北街社区 shizilin 狮子林社区 zhuozheng 拙政社区
        xinmin 新民社区 dongyuan 东园社区 taohuawu 桃花坞社区 huilong 汇龙社区
        shengli 胜利社区 baita 白塔社区 lujia 菉葭社区 zhangjiaxiang 张家巷社区
        lianhua 莲花社区"""),
    ),
    (
        "观前街道",
        "guanqian",
        _rows("""
        guanqian 观前社区 xuanmiao 玄妙社区 yiyuan 怡园社区 gongxiang 宫巷社区
        leqiao 乐桥社区 kangle 康乐社区 huayang 华阳社区 jianxin 建新社区
        shizijie 十梓街社区 daru 大儒社区 pingqiao 平桥社区 jinshi 金狮社区
        xueshi 学士社区 zhongshi 中市社区 tianqu 天衢社区 yanjia 严家社区"""),
    ),
    (
        "留园街道",
        "liuyuan",
        _rows("""
        liuyuan 留园社区 xiyuan 西园社区 shantang 山塘社区 hanshan 寒山社区
        jiangcun 江村社区 xinhu 新湖社区 yunqi 云栖社区 lianxing 联星社区
        jinlian 金莲社区 changxin 长新社区 xiangyang 向阳社区 liuyuan-xincun 留园新村社区
        fengjin 枫津社区 chunlan 春兰社区 huijing 汇景社区 chaoyang 朝阳社区
        youyuan 友园社区 kaiyuan 开元社区 hongjin 鸿锦社区 yinhe 银河社区"""),
    ),
    (
        "虎丘街道",
        "huqiu",
        _rows("""
        huqiu 虎丘社区 hufu 虎阜社区 xinzhuang-cun 新庄村 shanhu 山湖社区 jinghu 景湖社区
        xinglong 兴隆社区 sitang 寺塘社区 tonghe 通和社区 dongwu 东吴社区
        qingfeng 清风社区 jinhua 锦华社区 huayuan 华苑社区 hefeng 和风社区
        xinghuo 星火社区 jiayuan 嘉苑社区 ruixiang 瑞祥社区 anmin 安民社区
        qingyuan 清源社区 huqiu-cun 虎丘村 hongyun 鸿运社区"""),
    ),
]

# Payees: invented businesses of the kind that do this work.
PROPERTY = "苏州姑苏安居物业服务有限公司"
CLEANING = "苏州洁美保洁服务有限公司"
SIGNS = "苏州金阊广告标识制作部"
FIRE = "苏州东吴消防器材有限公司"
LIGHTS = "苏州光明照明工程有限公司"
GREEN = "苏州吴门园林绿化工程有限公司"
BUILD = "苏州沧浪建筑装饰工程有限公司"
POWER = "苏州虎丘电力安装有限公司"
HARDWARE = "苏州平江五金建材商行"
SOCIAL = "苏州汀兰社会工作服务中心"
CRAFT = "苏州巧手坊手工艺品店"
PIPE = "苏州清源管道疏通有限公司"
CATERING = "苏州邻里香餐饮管理有限公司"
SECURITY = "苏州安邦智能科技有限公司"
PRINT = "苏州文星图文印务有限公司"


@dataclass(frozen=True, slots=True)
class Idea:
    """A kind of project: what residents ask, what the committee plans, what it pays for."""

    key: str
    where: str  # urban | rural | any
    category: str  # 特殊人群类 / 居民自治类 / 问题焦点类
    titles: tuple[str, ...]
    demands: tuple[str, ...]
    plan: str
    report: str
    works: tuple[tuple[str, str], ...]  # (what was paid for, payee)

    @property
    def menu_item(self) -> str:
        """The item of the menu project library (workflows/menu.v1.yaml) the idea is."""
        return MENU_ITEMS[self.key]


SELF_GOVERNANCE = [
    Idea(
        "fire_lane",
        "urban",
        "问题焦点类",
        ("“绿色通道最后一公里”老新村消防通道清障", "老新村消防通道安全改善"),
        (
            "楼下主干道两边堆满杂物和电瓶车，消防车根本开不进来",
            "小区里几辆僵尸车停了好几年，把消防通道堵住了",
            "上次有老人生病，救护车进不来，只能抬出去",
        ),
        "联合物业清理主干道和楼间通道的堆物、拖移僵尸车，施划消防通道标线、设置警示牌；"
        "随后开展消防知识竞赛和消防演习进社区，由楼道长轮流巡查，防止堆物回潮。",
        "主干道和楼间通道已疏通，标线和警示牌全部到位，组织了一次消防演习。",
        (
            ("清运堆物、拖移僵尸车", PROPERTY),
            ("消防通道标线施划", SIGNS),
            ("警示标牌制作安装", SIGNS),
            ("消防演习器材及宣传资料", FIRE),
        ),
    ),
    Idea(
        "stairwell",
        "urban",
        "居民自治类",
        ("楼道文化营造", "楼道微更新与邻里公约"),
        (
            "楼道里小广告贴得到处都是，杂物也多，看着心里不舒服",
            "想把我们这个楼道弄干净点，邻居们都愿意出力",
            "楼道墙皮掉了，灯也不亮，晚上上楼心里发慌",
        ),
        "清除楼道小广告和堆物，粉刷墙面、更换楼道灯；由居民共同设计楼道文化墙，"
        "商定楼道公约，推选楼道长负责日常维护。",
        "试点楼道已完成清理和粉刷，文化墙和楼道公约上墙，推选了楼道长。",
        (
            ("楼道墙面铲除粉刷", BUILD),
            ("楼道文化墙设计制作", PRINT),
            ("楼道感应灯更换", LIGHTS),
            ("清洁工具及耗材", CLEANING),
        ),
    ),
    Idea(
        "street_lights",
        "urban",
        "问题焦点类",
        ("老旧小区路灯修复", "楼间庭院灯增设"),
        (
            "后面那排路灯坏了大半年，晚上出门黑咕隆咚",
            "老人晚上下楼倒垃圾怕摔跤，希望装几盏灯",
            "小区东门那段路没灯，下夜班回来很害怕",
        ),
        "排查小区路灯线路，修复损坏灯具，在楼间暗角增设太阳能庭院灯，由物业负责日常维护。",
        "修复损坏路灯，增设太阳能庭院灯，暗角全部照亮。",
        (("路灯线路检修", POWER), ("损坏灯具更换", LIGHTS), ("太阳能庭院灯采购安装", LIGHTS)),
    ),
    Idea(
        "drying_racks",
        "urban",
        "居民自治类",
        ("公共晾衣架加装", "晒被难问题解决项目"),
        (
            "小区没地方晒被子，大家都挂在绿化带的树上",
            "太阳好的时候想晒晒被子，楼下一点地方都没有",
            "有人在两棵树之间拉绳子晒衣服，挡路还不好看",
        ),
        "经居民议事会商定位置，在楼间空地安装不锈钢晾衣架，制定使用公约，由志愿者轮流管理。",
        "晾衣架已安装到位，使用公约已张贴，居民反映晒被方便多了。",
        (("不锈钢晾衣架采购", HARDWARE), ("基础浇筑及安装", BUILD), ("使用公约标牌", SIGNS)),
    ),
    Idea(
        "ebike",
        "urban",
        "问题焦点类",
        ("电动自行车集中充电棚建设", "电瓶车飞线充电整治"),
        (
            "有人从楼上拉飞线给电瓶车充电，太危险了",
            "电瓶车停在楼道里充电，晚上睡觉都不踏实",
            "小区没有充电的地方，大家只好自己想办法拉线",
        ),
        "在小区空地搭建电动自行车集中停放充电棚，安装智能充电桩和灭火器材，开展飞线充电整治宣传。",
        "充电棚建成投用，安装智能充电桩，飞线充电基本清除。",
        (
            ("充电棚钢结构搭建", BUILD),
            ("智能充电桩采购安装", POWER),
            ("电力线路敷设", POWER),
            ("灭火器材配置", FIRE),
        ),
    ),
    Idea(
        "greening",
        "any",
        "居民自治类",
        ("小区绿化补植", "口袋花园共建"),
        (
            "绿化带被踩秃了，黄土朝天，下雨一地泥",
            "楼下空地能不能种点花草，大家一起来养",
            "几棵树长得太密，把一楼的光都挡住了",
        ),
        "修剪过密树木，补植耐踩草皮和花灌木，划出一块居民认养花园，由志愿者认领养护。",
        "补植草皮和花灌木，认养花园由志愿者分片养护。",
        (("苗木及草皮采购", GREEN), ("补植及修剪施工", GREEN), ("养护工具", HARDWARE)),
    ),
    Idea(
        "handrails",
        "urban",
        "特殊人群类",
        ("楼道扶手加装（适老化改造）", "老年人上下楼扶手项目"),
        (
            "家里老人腿脚不便，上下楼全靠扶着墙",
            "我们这幢楼老人多，楼梯又陡，希望装个扶手",
            "老伴去年在楼梯上摔了一跤，现在都不敢下楼了",
        ),
        "在老年住户集中的楼道加装不锈钢扶手和防滑条，楼梯转角处增设感应灯。",
        "完成扶手、防滑条和转角感应灯安装，老人上下楼更安全。",
        (("不锈钢扶手制作安装", HARDWARE), ("楼梯防滑条", BUILD), ("转角感应灯", LIGHTS)),
    ),
    Idea(
        "drains",
        "any",
        "问题焦点类",
        ("雨污管道疏通及积水点整治", "楼前积水治理"),
        (
            "一下雨楼门口就积水，要蹚水才能出门",
            "下水道老是堵，一楼卫生间往上冒水",
            "窨井盖松了，踩上去咣当响，怕小孩掉下去",
        ),
        "对积水点管道进行清淤疏通，更换破损窨井盖，局部抬高路面。",
        "完成管道疏通和窨井盖更换，雨后积水明显减少。",
        (("管道清淤疏通", PIPE), ("窨井盖更换", PIPE), ("路面局部修补", BUILD)),
    ),
    Idea(
        "sorting",
        "any",
        "居民自治类",
        ("垃圾分类投放点改造", "垃圾分类督导项目"),
        (
            "垃圾房又脏又臭，夏天苍蝇特别多",
            "垃圾桶放在窗户底下，味道都飘进家里",
            "想知道垃圾到底怎么分，希望有人来讲讲",
        ),
        "改造垃圾投放点，加装雨棚和洗手池，招募居民志愿者开展定时定点督导。",
        "投放点改造完成，志愿者督导常态化，分类准确率明显提高。",
        (("投放点雨棚及洗手池", BUILD), ("分类桶及标识", SIGNS), ("志愿者督导物资", CLEANING)),
    ),
    Idea(
        "doors",
        "urban",
        "问题焦点类",
        ("单元门禁及防盗门修复", "楼道单元门维修"),
        ("单元门坏了好久，什么人都能进来发小广告", "楼下防盗门关不上，晚上风一吹咣咣响"),
        "修复或更换损坏的单元防盗门和门禁，由楼道长登记发放门禁卡。",
        "损坏单元门全部修复，门禁卡已登记发放。",
        (("单元防盗门更换", SECURITY), ("门禁系统维修", SECURITY), ("门禁卡制作", SECURITY)),
    ),
    Idea(
        "elderly",
        "any",
        "特殊人群类",
        ("独居老人结对关爱", "“邻里守望”高龄老人关爱项目"),
        (
            "隔壁独居的阿婆好几天没看见了，大家都担心",
            "我一个人住，万一晚上有事都不知道找谁",
            "希望有人能定期上门看看老人",
        ),
        "组织党员和志愿者与独居、高龄老人结对，每周上门探访；为老人配置紧急呼叫器。",
        "结对探访已常态化，老人均配置紧急呼叫器。",
        (("紧急呼叫器采购", SECURITY), ("探访慰问物资", CATERING), ("志愿者培训", SOCIAL)),
    ),
    Idea(
        "crafts",
        "any",
        "特殊人群类",
        ("妇女手工坊", "巧手妈妈手工团队增能项目"),
        (
            "家里闲着，会绣花，想找点事情做",
            "小区里很多阿姨会手工，能不能有个地方一起做",
            "想学点手艺，顺便认识认识邻居",
        ),
        "借用社区活动室开设妇女手工坊，请老师教授刺绣、编织等传统手工艺，"
        "组织作品展示和义卖，所得用于社区公益。",
        "手工坊每周活动，学员完成作品百余件，举办了一次展示义卖。",
        (("手工材料采购", CRAFT), ("手工老师授课", SOCIAL), ("作品展示活动布置", PRINT)),
    ),
    Idea(
        "well",
        "urban",
        "居民自治类",
        ("古井清淤保护", "老井修缮与井边议事"),
        ("巷子里那口老井里都是垃圾，可惜了", "老井边上的井栏松动了，小孩在那里玩很危险"),
        "清理古井淤泥和垃圾，加固井栏，设置保护说明牌，由附近居民认领日常保洁。",
        "古井清淤完成，井栏加固并设说明牌。",
        (("古井清淤", PIPE), ("井栏加固", BUILD), ("保护说明牌", SIGNS)),
    ),
    Idea(
        "roof",
        "urban",
        "问题焦点类",
        ("顶楼屋面漏水维修", "老公房屋面防水修缮"),
        ("顶楼一下雨就漏，墙上都发霉了", "屋顶防水层老化，楼道顶上也在渗水"),
        "对漏水严重的屋面进行防水修补，疏通天沟落水管。",
        "屋面防水修补完成，经雨天检验不再渗漏。",
        (("屋面防水修补", BUILD), ("天沟及落水管疏通", PIPE)),
    ),
    Idea(
        "bike_shed",
        "urban",
        "问题焦点类",
        ("非机动车棚修缮", "自行车棚整理"),
        ("车棚顶漏雨，车子都锈了", "车棚里都是没人要的破自行车，新车停不进去"),
        "清理车棚内无主废旧自行车，修补棚顶，重新划线分区停放。",
        "清理废旧车辆，棚顶修补完成，停放有序。",
        (("废旧车辆清理", PROPERTY), ("棚顶修补", BUILD), ("停放划线", SIGNS)),
    ),
    Idea(
        "council_corner",
        "any",
        "居民自治类",
        ("邻里议事角建设", "睦邻客厅"),
        ("大家有事想商量，连个坐下来说话的地方都没有", "希望有个地方老人们能坐坐聊聊天"),
        "利用闲置用房布置邻里议事角，配置桌椅和公告栏，每月召开一次居民议事会。",
        "议事角已布置并投入使用，每月议事会定期召开。",
        (("桌椅采购", HARDWARE), ("公告栏制作", PRINT), ("场地简易装修", BUILD)),
    ),
    Idea(
        "latrines",
        "rural",
        "问题焦点类",
        ("拆除老茅坑", "农户后院旱厕拆除及复绿"),
        (
            "后院的老茅坑夏天臭气熏天，招苍蝇",
            "家里早就装了抽水马桶，老茅坑一直没人拆",
            "茅坑挨着河边，怕污染河水",
        ),
        "社工和村干部挨家挨户动员，拆除已改厕农户的老茅坑，清运后场地硬化或复绿。",
        "动员农户拆除老茅坑，场地全部硬化或复绿。",
        (("老茅坑拆除清运", BUILD), ("场地硬化", BUILD), ("复绿苗木", GREEN)),
    ),
    Idea(
        "river",
        "rural",
        "问题焦点类",
        ("村内河道清淤", "河埠头修缮"),
        ("村前小河淤积得厉害，水都发黑了", "河埠头石阶松了，老人洗东西不安全"),
        "对村内河道进行清淤，修缮河埠头石阶并加装护栏。",
        "河道清淤完成，河埠头修缮并加装护栏。",
        (("河道清淤", PIPE), ("河埠头石阶修缮", BUILD), ("护栏安装", HARDWARE)),
    ),
    Idea(
        "village_lights",
        "rural",
        "问题焦点类",
        ("村道路灯安装", "村道照明亮化"),
        ("村里的小路晚上一片漆黑", "从公交站走回家那段路没有灯"),
        "在村道主要路段安装太阳能路灯。",
        "村道主要路段已安装太阳能路灯。",
        (("太阳能路灯采购", LIGHTS), ("基础及安装", POWER)),
    ),
]

PARTY_SERVICE = [
    Idea(
        "meals",
        "any",
        "特殊人群类",
        ("社区老年助餐点建设", "长者食堂"),
        ("老两口年纪大了，烧饭越来越吃力", "希望社区能有个地方让老人吃口热饭"),
        "改造社区用房设立老年助餐点，引入餐饮企业供餐，对高龄、独居老人给予就餐补贴。",
        "助餐点开业运营，每天为老人供应午餐。",
        (("厨房设备采购", CATERING), ("餐厅改造", BUILD), ("就餐补贴", CATERING)),
    ),
    Idea(
        "after_school",
        "any",
        "特殊人群类",
        ("“四点半课堂”", "双职工子女课后托管"),
        ("孩子三点多放学，我们下班要六点，中间没人管", "希望社区能帮忙看看放学的孩子"),
        "在党群服务中心开设四点半课堂，由社工、志愿者和退休教师辅导作业、开展兴趣活动。",
        "四点半课堂全学期开课。",
        (("课桌椅及学习用品", HARDWARE), ("社工服务购买", SOCIAL), ("兴趣课程材料", PRINT)),
    ),
    Idea(
        "fire_station",
        "any",
        "问题焦点类",
        ("微型消防站建设", "老旧小区消防安全提升"),
        ("小区老房子多，真着火了消防车进来要好久", "楼里灭火器都过期了"),
        "建设社区微型消防站，配置消防器材，组建志愿消防队并定期演练；更换过期灭火器。",
        "微型消防站建成，志愿消防队完成首次演练，灭火器全部更新。",
        (
            ("消防器材配置", FIRE),
            ("灭火器更换", FIRE),
            ("站点建设", BUILD),
            ("志愿消防队培训", FIRE),
        ),
    ),
    Idea(
        "smart_safety",
        "any",
        "特殊人群类",
        ("独居老人智能安防", "智慧养老“一键通”"),
        ("家里老人一个人在家，烧着水就忘了", "想给独居的老父亲装个报警的东西"),
        "为独居、高龄老人安装烟感报警器、燃气报警器和智能门磁，接入社区值班平台。",
        "完成独居老人家庭智能安防设备安装，接入值班平台。",
        (("烟感及燃气报警器", SECURITY), ("智能门磁", SECURITY), ("平台接入服务", SECURITY)),
    ),
    Idea(
        "pocket_park",
        "any",
        "居民自治类",
        ("口袋公园改造", "老旧小区微更新"),
        ("小区里那块空地荒着，能不能改成小花园", "孩子们没地方玩，只能在车道上跑"),
        "将小区闲置空地改造为口袋公园，铺设步道，设置座椅和儿童游乐设施。",
        "口袋公园建成开放。",
        (("景观施工", GREEN), ("座椅及游乐设施", HARDWARE), ("步道铺设", BUILD)),
    ),
    Idea(
        "cameras",
        "any",
        "问题焦点类",
        ("小区监控补盲", "技防设施提升"),
        ("电瓶车在楼下被偷了，一查没监控", "小区后门没有监控，晚上有陌生人进出"),
        "在小区出入口和盲区补装高清监控，接入物业监控室。",
        "监控补盲完成，出入口和盲区全部覆盖。",
        (("摄像头采购", SECURITY), ("线路敷设", POWER), ("监控室设备", SECURITY)),
    ),
    Idea(
        "accessibility",
        "any",
        "特殊人群类",
        ("无障碍设施改造", "党群服务中心适老化改造"),
        ("坐轮椅进不了社区服务中心的门", "台阶太高，老人推助行器上不去"),
        "改造服务中心入口坡道，加装扶手和无障碍卫生间设施。",
        "无障碍坡道和扶手改造完成。",
        (("无障碍坡道改造", BUILD), ("扶手及卫生间设施", HARDWARE)),
    ),
    Idea(
        "festival",
        "any",
        "居民自治类",
        ("睦邻文化节", "邻里节系列活动"),
        ("邻居住了多年都不认识，希望多搞点活动", "想办个百家宴，大家一起热闹热闹"),
        "举办睦邻文化节，开展百家宴、才艺展示、旧物交换等活动，培育居民文体团队。",
        "睦邻文化节圆满举办，新成立居民文体团队。",
        (("活动场地布置", PRINT), ("活动物资", CATERING), ("文艺演出服务", SOCIAL)),
    ),
]


def ideas_for(kind: str, *, party: bool = False) -> list[Idea]:
    return [i for i in (PARTY_SERVICE if party else SELF_GOVERNANCE) if i.where in ("any", kind)]


SURNAMES = "王李张刘陈杨黄赵吴周徐孙朱沈顾陆钱蒋高金"
HONORIFICS = ("老伯", "阿姨", "阿婆", "师傅", "先生", "女士", "老师")

ACCEPT_NOTES = (
    "属于房前屋后急难事，居民反映集中，同意进入方案编制",
    "经两委会研究，符合自治项目范围，同意立项筹备",
    "需求真实、受益面广，同意进入方案编制",
)
REJECT_AT_SCREENING = (
    "属于物业服务合同范围，已转交物业公司处理，不纳入自治项目",
    "涉及房屋主体结构，需由房管部门统一实施，不纳入自治项目",
    "已列入区老旧小区改造工程，避免重复投入，不予立项",
)
REJECT_AT_REVIEW = (
    "居民议事会认为方案受益面较窄、费用偏高，不予立项",
    "议事会讨论后居民意见分歧较大，暂不实施",
)
REVISION_REASONS = (
    "预算明细不够清楚，请补充三家比价材料",
    "议事会建议先征求一楼住户意见再定位置",
    "方案缺少后续管护安排，请补充",
)
STREET_NOTES = (
    "同意实施，请严格按程序做好公示",
    "同意，注意施工安全和资金台账管理",
    "经街道党工委研究同意",
)
RECTIFY_ISSUES = (
    "部分标线不清晰，需要返工",
    "居民反映部分位置仍有问题，需要补充施工",
    "验收发现个别设施安装不牢固，需要整改",
)
EVALUATIONS = (
    "居民代表和社工共同评估：项目完成度高，居民满意",
    "基本达到预期目标，后续管护需加强",
    "效果明显，建议作为示范项目推广",
)
CANCEL_BY_COMMITTEE = (
    "该问题已纳入老旧小区改造工程统一实施，项目撤销",
    "施工方案与管线迁改冲突，经议事会同意撤销",
    "居民需求已由其他渠道解决，项目撤销",
)
CANCEL_BY_STREET = (
    "街道已统筹专项资金解决，本项目撤销",
    "经街道审核，项目内容与区级工程重复，予以撤销",
)


def yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def closing_notice(title: str, budget: int, spent: int, fund_label: str) -> str:
    return (
        f"“{title}”已办结。预算{yuan(budget)}，实际支出{yuan(spent)}，"
        f"结余{yuan(budget - spent)}已退回{fund_label}。感谢居民参与，欢迎监督。"
    )


# Each idea's item in the menu project library; its category there is the idea's category.
MENU_ITEMS = {
    "fire_lane": "C0101",
    "stairwell": "B0201",
    "street_lights": "C0301",
    "drying_racks": "B0204",
    "ebike": "C0201",
    "greening": "B0301",
    "handrails": "A0103",
    "drains": "C0304",
    "sorting": "B0303",
    "doors": "C0302",
    "elderly": "A0101",
    "crafts": "A0401",
    "well": "B0701",
    "roof": "C0303",
    "bike_shed": "C0203",
    "council_corner": "B0101",
    "latrines": "C0501",
    "river": "C0502",
    "village_lights": "C0503",
    "meals": "A0102",
    "after_school": "A0301",
    "fire_station": "C0102",
    "smart_safety": "A0104",
    "pocket_park": "B0302",
    "cameras": "C0401",
    "accessibility": "A0201",
    "festival": "B0501",
}

# 自治管理: who keeps a finished project up, and what their checks find.
KEEPERS = (
    "楼道长团队",
    "居民自管小组",
    "小区物业服务中心",
    "网格员与楼栋长",
    "业主委员会",
    "党员先锋岗",
)
VOLUNTEER_TEAMS = ("睦邻志愿服务队", "银发护绿队", "平安巡防队", "巧手妈妈志愿队", None, None)
FOLLOW_UP_FINDINGS = (
    "设施完好，居民按公约自觉维护。",
    "发现少量新增堆物，已由楼道长当场劝导清理。",
    "个别灯具损坏，已报物业更换。",
    "使用情况良好，居民满意，继续按月巡查。",
    "标识有褪色，已安排志愿者重新描画。",
)
